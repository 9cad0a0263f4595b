"""restora: agentic image restoration.

Images cross every boundary inside restora in one form: a float32 numpy array of shape
(H, W, 3), RGB, values in [0, 1]. Conversion happens only at the edges (file I/O in
:mod:`restora.imageio`, a model's own input inside its tool).
"""

__version__ = "0.1.0"

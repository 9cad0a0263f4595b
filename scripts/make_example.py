"""Make the bundled example: a 256-px crop of scikit-image's public-domain `chelsea` photo,
degraded with restora's own synthesis (sensor noise, then JPEG compression).

    python scripts/make_example.py    # writes examples/damaged.png
"""

from pathlib import Path

import numpy as np
from skimage import data

from restora.degrade import compose
from restora.imageio import save_image

photo = data.chelsea().astype(np.float32) / 255.0  # 300x451, public domain
crop = np.ascontiguousarray(photo[22:278, 60:316])
damaged, labels = compose(crop, ["noise", "jpeg"], seed=7, severities={"noise": 0.45, "jpeg": 0.5})
out = Path(__file__).resolve().parents[1] / "examples" / "damaged.png"
save_image(out, damaged)
print(out, labels)

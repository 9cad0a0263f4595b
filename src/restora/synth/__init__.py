"""The training-data factory: what restora synthesizes from clean photos for its trainers.

* :mod:`restora.synth.planner`: ``restora synth``, planner trajectories (RestoreAgent's five
  scenarios from a teacher search) as traces, SFT rows and GRPO rows, with a dataset card.

Examples:
    >>> from restora.synth import run_synth
    >>> summary = run_synth([Path("photos")], Path("out/synth"), n=100)   # doctest: +SKIP
"""

from restora.synth.planner import run_synth

__all__ = ["run_synth"]

"""The measuring stick: ``restora bench mio`` and ``restora bench real`` (``../shared/BENCHMARK.md``).

Examples:
    >>> from restora.bench import COMBOS, GROUPS, STRATEGIES
    >>> len(COMBOS), list(GROUPS), STRATEGIES[-1]
    (16, ['A', 'B', 'C'], 'oracle')
"""

from restora.cases import COMBOS, GROUPS, group_of
from restora.bench.mio import run_mio
from restora.planners.search import PrefixCache
from restora.quality.fidelity import psnr, rank_pct, ssim
from restora.bench.strategies import STRATEGIES, CaseRunner

__all__ = [
    "COMBOS",
    "GROUPS",
    "STRATEGIES",
    "CaseRunner",
    "PrefixCache",
    "group_of",
    "psnr",
    "rank_pct",
    "run_mio",
    "ssim",
]

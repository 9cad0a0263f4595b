"""Per-process state of worker processes (``restora bench``, ``restora synth``; see :mod:`restora.batch.pool`).

Work is spread over spawned processes that each keep one :class:`~restora.tools.ToolBox` and one
:class:`~restora.quality.QualityScorer` for their lifetime (models load once per process), and
use one thread each for torch, OpenCV and ncnn so that N workers share N cores instead of
fighting over them.
"""

from __future__ import annotations

import os
from typing import Any

_STATE: dict[Any, Any] = {}


def worker_init() -> None:
    """Initializer of worker processes: one thread per library, offline hub."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("RESTORA_NCNN_THREADS", "1")
    import cv2
    import torch

    torch.set_num_threads(1)
    cv2.setNumThreads(1)


def process_tools(allow: list[str] | None = None) -> tuple[Any, Any]:
    """This process's (toolbox, scorer), made on first use.

    Multi-task tools (``dit_restore``) are left out unless ``allow`` names them: the benchmark's
    prefix cache and the teacher search key a step by tool name alone, which is one task per
    tool. Asking for one with ``--allow`` is an error until that changes.
    """
    from restora.errors import ToolError
    from restora.quality import QualityScorer
    from restora.tools.registry import ToolBox, get_tool, tool_names

    key = ("toolbox", tuple(allow) if allow is not None else None)
    if key not in _STATE:
        multi = [n for n in (allow if allow is not None else tool_names()) if get_tool(n).multi_task()]
        if allow is not None and multi:
            raise ToolError(f"{', '.join(multi)}: multi-task tools cannot be benchmarked yet (one task per tool in the prefix cache)")
        names = allow if allow is not None else [n for n in tool_names() if n not in multi]
        _STATE[key] = ToolBox(allow=names)
    if "scorer" not in _STATE:
        _STATE["scorer"] = QualityScorer()
    return _STATE[key], _STATE["scorer"]

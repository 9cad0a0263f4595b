"""Searching over tool pipelines: run sequences of tools on one image with a prefix cache.

A pipeline is a sequence of tool names. Each tool's parameters are its own first suggestion for
what perception measures on the image it is given (exactly the agent's first choice), so a step
is a deterministic function of (input image, tool): the cache keys nodes by the tuple of tool
names applied to the case's degraded input. Pipelines that share a prefix share its computation;
the benchmark's strategies (the oracle's enumeration, ``random``, ``fixed``, ``greedy``, ``explore``)
and the teacher search of :mod:`restora.planners.teacher` all read one cache.

Every node remembers what computing it cost (perception of its parent plus the tool run), so a
strategy served from the cache is still charged the wall time it would take alone.

Examples:
    >>> cache = PrefixCache(case.degraded, toolbox)                  # doctest: +SKIP
    >>> nodes = cache.run(("denoise_srmd", "dejpeg_waifu2x"))       # doctest: +SKIP
    >>> nodes[-1].image.shape, cache.executions                      # doctest: +SKIP
    ((256, 256, 3), 2)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from restora.errors import RestoraError
from restora.taxonomy import DEGRADATION_FOR
from restora.tools.registry import ToolBox

@dataclass
class Node:
    """The image after a prefix of tools, and what the last step cost."""

    key: tuple[str, ...]
    image: np.ndarray
    params: dict[str, Any] | None = None  # the last step's parameters
    error: str | None = None  # the last step failed: image is the parent's
    step_seconds: float = 0.0  # perception of the parent + the last tool's run
    report: Any = None  # perception of this node's image (computed on demand)
    report_seconds: float = 0.0
    children: dict[str, Node] = field(default_factory=dict)


class PrefixCache:
    """Tool-sequence -> image for one case; computes each distinct prefix once.

    ``executions`` counts tool runs actually performed; ``requests`` counts the step lookups
    strategies made (what a cache-less implementation would have run).
    """

    def __init__(
        self,
        degraded: np.ndarray,
        toolbox: ToolBox,
        perceive: Callable[[np.ndarray], Any] | None = None,
        enabled: bool = True,
    ) -> None:
        if perceive is None:
            from restora.perception import backend

            perceive = backend()
        self.toolbox = toolbox
        self.perceive = perceive
        self.enabled = enabled
        self.root = Node(key=(), image=degraded)
        self.executions = 0  # tool runs performed
        self.requests = 0  # steps asked for (a cache-less run performs each)
        self.work_seconds = 0.0  # wall time spent computing (tools and perception)
        self.requested_seconds = 0.0  # sum of the recorded cost of every step asked for
        self.perception_seconds = 0.0  # the part of work_seconds spent perceiving

    def report(self, node: Node) -> Any:
        """Perception of ``node``'s image (once per node)."""
        if node.report is None:
            t0 = time.perf_counter()
            node.report = self.perceive(node.image)
            node.report_seconds = time.perf_counter() - t0
            self.work_seconds += node.report_seconds
            self.perception_seconds += node.report_seconds
        return node.report

    def step(self, parent: Node, tool: str) -> Node:
        """``parent`` followed by ``tool`` (computed once, unless the cache is disabled)."""
        self.requests += 1
        node = parent.children.get(tool) if self.enabled else None
        if node is None:
            node = self._compute(parent, tool)
        self.requested_seconds += node.step_seconds
        return node

    def _compute(self, parent: Node, tool: str) -> Node:
        cls = self.toolbox.get_class(tool)
        if self.enabled:
            report = self.report(parent)
        else:  # naive: nothing is remembered, not even the parent's perception
            parent.report = None
            report = self.report(parent)
            parent.report = None
        finding = report.findings[str(DEGRADATION_FOR[cls.task])]
        params = cls.suggest_params(finding.severity, finding.evidence)[0]
        t0 = time.perf_counter()
        error = None
        try:
            out = self.toolbox.run(tool, parent.image, params)
        except RestoraError as e:
            out, error = parent.image, str(e)
        seconds = time.perf_counter() - t0
        self.executions += 1
        self.work_seconds += seconds
        node = Node(
            key=parent.key + (tool,),
            image=out,
            params=params.model_dump(mode="json"),
            error=error,
            step_seconds=parent.report_seconds + seconds,
        )
        if self.enabled:
            parent.children[tool] = node
        return node

    def run(self, tools: tuple[str, ...] | list[str]) -> list[Node]:
        """The nodes after each of ``tools`` applied in order to the degraded input."""
        nodes, node = [], self.root
        for t in tools:
            node = self.step(node, t)
            nodes.append(node)
        return nodes

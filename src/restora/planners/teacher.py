"""Planner training data: teacher search over pipelines and RestoreAgent's five scenarios.

For a clean photo we make the degradation ourselves (:mod:`restora.degrade`), so the right next
step can be known: the teacher enumerates every pipeline of the true tasks (each order x each
tool, through the benchmark's prefix cache, every prefix included) and scores every node with a
balanced score against the clean crop::

    teacher = 0.7 * fidelity + 0.3 * quality
    fidelity = 0.5 * min(PSNR, 50) / 50 + 0.5 * SSIM        quality = mean normalised NR score

The best node (a full pipeline, a shorter one, or the input itself when nothing helps) gives the
best trajectory; children that lower the teacher score by more than ``BAD_MARGIN`` are the
informative worse steps (one "distractor" tool of a task that is not wrong with the image is
tried at the input too). From one search come trajectories of the five scenarios:

1. ``plan``: the input, no history -> the first step of the best path;
2. ``adjust``: after k kept steps of the best path -> its next step;
3. ``rollback``: a bad step was kept -> roll it back;
4. ``avoid_repeat``: the bad step was rolled back (and banned) -> the best next step instead;
5. ``stop``: the best path is done -> stop (clean inputs land here with no history).

Each trajectory is a trace in the live runs' schema (start, steps, end); its last step is the
target. Rows for trainers are made from it by :mod:`restora.synth.planner`.
"""

from __future__ import annotations

import itertools
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from restora.planners.search import Node, PrefixCache
from restora.quality.fidelity import psnr, ssim
from restora.planners.base import Action, choice_key
from restora.planners.heuristic import rank_tools
from restora.taxonomy import RESTORATION_ORDER, Task
from restora.tools.registry import ToolBox

SCENARIOS: tuple[str, ...] = ("plan", "adjust", "rollback", "avoid_repeat", "stop")
FIDELITY_WEIGHT = 0.7
QUALITY_WEIGHT = 0.3
BAD_MARGIN = 0.01
MAX_PIPELINES = 120


@dataclass
class View:
    """A node as the teacher and the planner see it."""

    node: Node
    teacher: float
    psnr: float
    ssim: float
    scores: dict[str, Any]  # the agent's own QualityScores (with perception) as JSON
    report: dict[str, Any]  # perception report as JSON


@dataclass
class Step:
    """One step of a trajectory: a kept or rolled-back tool step, a rollback, or a stop."""

    action: Action
    decision: str  # accept | rollback | stop
    before: View
    after: View | None = None


@dataclass
class Trajectory:
    scenario: str
    steps: list[Step]  # history, then the target as the last step
    best_plan: list[str] = field(default_factory=list)

    @property
    def target(self) -> Step:
        return self.steps[-1]

    @property
    def history(self) -> list[Step]:
        return self.steps[:-1]


def teacher_score(p: float, s: float, nr: float | None) -> float:
    """The balanced score: 0.7 fidelity (PSNR, SSIM) + 0.3 no-reference quality.

    Examples:
        >>> round(teacher_score(30.0, 0.9, 0.8), 4)
        0.765
    """
    fidelity = 0.5 * min(p, 50.0) / 50.0 + 0.5 * s
    return FIDELITY_WEIGHT * fidelity + QUALITY_WEIGHT * (nr if nr is not None else 0.0)


class TeacherSearch:
    """Enumerates and scores the pipelines of one degraded image against its clean crop."""

    def __init__(
        self,
        clean: np.ndarray,
        degraded: np.ndarray,
        tasks: list[Task],
        toolbox: ToolBox,
        scorer: Any,
        rng: np.random.Generator,
        max_pipelines: int = MAX_PIPELINES,
        distractors: int = 1,
    ) -> None:
        self.clean = clean
        self.tasks = list(tasks)
        self.toolbox = toolbox
        self.scorer = scorer
        self.rng = rng
        self.cache = PrefixCache(degraded, toolbox)
        self.catalogue = {n: t.describe() for n, t in toolbox.catalogue().items()}
        self.megapixels = degraded.shape[0] * degraded.shape[1] / 1e6
        self.max_pipelines = max_pipelines
        self.distractors = distractors
        self.views: dict[tuple[str, ...], View] = {}
        self.best: View | None = None
        self.pipelines: list[tuple[str, ...]] = []
        self.score_seconds = 0.0  # NR scoring and PSNR/SSIM of every node

    def tools_for(self, task: Task) -> list[str]:
        return rank_tools(task, self.catalogue, self.megapixels)

    def view(self, node: Node) -> View:
        if node.key not in self.views:
            report = self.cache.report(node)
            t0 = time.perf_counter()
            scores = self.scorer.score(node.image, report=report)
            p, s = psnr(node.image, self.clean), ssim(node.image, self.clean)
            self.score_seconds += time.perf_counter() - t0
            self.views[node.key] = View(
                node,
                teacher_score(p, s, scores.nr),
                p,
                s,
                scores.model_dump(mode="json"),
                report.model_dump(mode="json"),
            )
        return self.views[node.key]

    def run(self) -> TeacherSearch:
        pipes = set()
        for order in itertools.permutations(self.tasks):
            options = [self.tools_for(t) for t in order]
            if all(options):
                pipes.update(itertools.product(*options))
        pipes_list = sorted(pipes)
        if len(pipes_list) > self.max_pipelines:  # bounded: a seeded subset
            keep = self.rng.choice(len(pipes_list), self.max_pipelines, replace=False)
            pipes_list = [pipes_list[i] for i in sorted(keep)]
        self.pipelines = pipes_list
        self.view(self.cache.root)
        for pipe in pipes_list:
            for node in self.cache.run(pipe):
                if node.error is None:
                    self.view(node)
        true_views = [v for k, v in self.views.items() if not v.node.error]
        self.best = max(true_views, key=lambda v: (v.teacher, -len(v.node.key)))
        # distractors: tools of tasks the image does not need, tried on the input
        others = [t for t in RESTORATION_ORDER if t not in self.tasks and self.tools_for(t)]
        for t in self.rng.permutation(len(others))[: self.distractors] if others else []:
            task = others[int(t)]
            options = self.tools_for(task)
            node = self.cache.step(self.cache.root, options[int(self.rng.integers(len(options)))])
            if node.error is None:
                self.view(node)
        return self

    def path(self) -> list[View]:
        """Views along the best path, input first."""
        assert self.best is not None, "run() first"
        key = self.best.node.key
        return [self.views[key[:i]] for i in range(len(key) + 1)]

    def bad_children(self, view: View) -> list[View]:
        """Children of ``view`` (computed by the search) that lower the teacher score."""
        out = []
        for child in view.node.children.values():
            v = self.views.get(child.key)
            if v is not None and v.teacher < view.teacher - BAD_MARGIN:
                out.append(v)
        return sorted(out, key=lambda v: v.node.key)


def _tool_action(view: View, reason: str) -> Action:
    tool = view.node.key[-1]
    from restora.tools.registry import get_tool

    return Action(kind="tool", tool=tool, task=str(get_tool(tool).task), params=dict(view.node.params or {}), reason=reason)


def _kept(path: list[View], k: int) -> list[Step]:
    """The first ``k`` steps of ``path`` as kept steps."""
    return [Step(_tool_action(path[i + 1], "teacher: best path"), "accept", path[i], path[i + 1]) for i in range(k)]


def trajectories(search: TeacherSearch, rng: np.random.Generator) -> list[Trajectory]:
    """The five scenarios' trajectories from one finished search (deterministic given ``rng``)."""
    path = search.path()
    m = len(path) - 1
    plan = list(path[-1].node.key)
    out: list[Trajectory] = []

    def reason_for(v: View) -> str:
        task = _tool_action(v, "").task or "restore"
        return f"{task.replace('_', ' ')} next"

    if m >= 1:
        out.append(Trajectory("plan", [Step(_tool_action(path[1], reason_for(path[1])), "accept", path[0], path[1])], plan))
    for k in range(1, m):
        target = Step(_tool_action(path[k + 1], reason_for(path[k + 1])), "accept", path[k], path[k + 1])
        out.append(Trajectory("adjust", [*_kept(path, k), target], plan))
    # a bad step: at a seeded point of the best path, one of the children that lowered the score
    spots = [(k, b) for k in range(m + 1) for b in search.bad_children(path[k]) if k == m or b.node.key != path[k + 1].node.key]
    if spots:
        k, bad = spots[int(rng.integers(len(spots)))]
        bad_action = _tool_action(bad, "a step that made the image worse")
        rollback = Action.rollback(f"{bad_action.tool} made the image worse")
        out.append(
            Trajectory(
                "rollback",
                [*_kept(path, k), Step(bad_action, "accept", path[k], bad), Step(rollback, "rollback", bad, path[k])],
                plan,
            )
        )
        if k < m:
            target = Step(_tool_action(path[k + 1], reason_for(path[k + 1])), "accept", path[k], path[k + 1])
            out.append(Trajectory("avoid_repeat", [*_kept(path, k), Step(bad_action, "rollback", path[k], bad), target], plan))
    stop_reason = "nothing left that improves the image" if m else "nothing to fix"
    out.append(Trajectory("stop", [*_kept(path, m), Step(Action.stop(stop_reason), "stop", path[m])], plan))
    return out


def banned_after(steps: list[Step]) -> list[str]:
    """choice_key()s banned by the rolled-back steps of ``steps``."""
    return [choice_key(s.action.tool or "", s.action.params) for s in steps if s.decision == "rollback" and s.action.kind == "tool"]


def sample_seed(seed: int, index: int) -> int:
    return zlib.crc32(f"synth|{int(seed)}|{int(index)}".encode())

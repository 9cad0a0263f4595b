"""The benchmark's decision strategies (BENCHMARK.md), all over the same tools and budget.

=========  =====================================================================================
none       the degraded input itself.
random     the true tasks (labels) in a random order, a random tool per task; no rollback.
fixed      the true tasks in restoration order (compression, imaging, scene), default tool each.
greedy     label-free: candidate tasks from perception of the input; each step tries every
           remaining candidate's default tool, keeps the best by no-reference score, stops when
           nothing improves (Q-Agent-like).
explore    label-free: per candidate task (restoration order) run every tool, keep the best by
           no-reference score, roll back when even that is worse (AgenticIR-like).
agent      :func:`restora.agent.restore` with the default planner, exactly as ``restora run``.
oracle     every order of the true tasks x every tool per task; the best by PSNR (upper bound).
=========  =====================================================================================

With a named planner (``restora bench mio --planner hf|vlm ...``, a
:class:`~restora.planners.factory.PlannerSpec`), ``agent_<name>`` (:func:`planner_strategy`) is
the same agent with that planner, run on the same cases as ``agent`` (the heuristic planner), so a
trained planner is compared with the heuristic; its rows count the planner's decisions, those that
fell back to the heuristic and those whose reply was constrained to the schema.

"Default tool" is the heuristic planner's first-ranked tool for the task
(:func:`restora.planners.heuristic.rank_tools`); a tool's parameters are always its own first
suggestion for the image in front of it (see :mod:`restora.planners.search`). ``max_steps`` caps
every strategy's tool executions, rejected ones included; ``oracle`` is not capped.
"""

from __future__ import annotations

import itertools
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from restora.cases import Case
from restora.planners.search import Node, PrefixCache
from restora.quality.fidelity import psnr
from restora.planners.heuristic import rank_tools
from restora.taxonomy import RESTORATION_ORDER, TASK_FOR, Degradation, Task
from restora.tools.registry import ToolBox

STRATEGIES: tuple[str, ...] = ("none", "random", "fixed", "greedy", "explore", "agent", "oracle")
EXTRA_STRATEGIES: tuple[str, ...] = ("agent_unguarded", "agent_unvouched", "agent_trials")
"""Run only when asked (``--strategies``): ``agent_unguarded`` is the agent without the no-harm
guard, ``agent_unvouched`` the agent whose guard never vouches (every step must raise the NR
score; ``RunConfig.guard_vouch``), ``agent_trials`` the agent that runs each tool's other suggested parameters too and keeps
the best (``RunConfig.sibling_trials``; extra executions are not counted as tool calls but are in
its seconds), to measure what each changes in the same run."""
NR_MIN_GAIN = 1e-4  # greedy/explore: a step must raise the NR score by more than this


def planner_strategy(planner: str) -> str | None:
    """The strategy running the agent with planner ``planner``; None for the heuristic (``agent``).

    Examples:
        >>> planner_strategy("hf"), planner_strategy("heuristic")
        ('agent_hf', None)
    """
    return None if planner == "heuristic" else f"agent_{planner}"


def planner_counts(records: list[Any]) -> dict[str, int]:
    """A model planner's decisions in a run's trace ``records`` (the steps it was asked for: their
    action says how its reply was decoded; not the agent's own stop when a budget is spent, nor a
    heuristic planner's steps), how many fell back to the heuristic and how many replies were
    constrained to the schema.

    Examples:
        >>> from types import SimpleNamespace as N
        >>> step = lambda fb, c: N(event="step", action=N(planner="vlm", fallback=fb, decoding={"constrained": c}))
        >>> budget = N(event="step", action=N(planner="vlm", fallback=None, decoding=None))
        >>> planner_counts([N(event="start"), step(None, True), step("heuristic: ...", False), budget])
        {'planner_decisions': 2, 'planner_fallbacks': 1, 'planner_constrained': 1}
    """
    steps = [r.action for r in records if getattr(r, "event", None) == "step" and r.action.decoding is not None]
    return {
        "planner_decisions": len(steps),
        "planner_fallbacks": sum(1 for a in steps if a.fallback),
        "planner_constrained": sum(1 for a in steps if (a.decoding or {}).get("constrained") is True),
    }


@dataclass
class Outcome:
    """What one strategy did on one case."""

    strategy: str
    image: np.ndarray
    plan: list[str]
    tool_calls: int
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)


class CaseRunner:
    """Runs strategies on one case; they share one :class:`PrefixCache`.

    Args:
        case: the clean crop, degraded input and labels.
        toolbox: the tools (its catalogue is the library every strategy draws from).
        scorer: a :class:`restora.quality.QualityScorer` (greedy/explore/agent use its NR score).
        max_steps: tool executions allowed per strategy.
        cache: False runs every pipeline from the input (the naive enumeration, for comparison).
        planner: ``(name, factory)``: the strategy :func:`planner_strategy` ``(name)`` runs the
            agent with a fresh ``factory()`` planner.
    """

    def __init__(
        self,
        case: Case,
        toolbox: ToolBox,
        scorer: Any,
        max_steps: int = 4,
        cache: bool = True,
        perceive: Callable[[np.ndarray], Any] | None = None,
        planner: tuple[str, Callable[[], Any]] | None = None,
    ) -> None:
        self.case = case
        self.planner = planner
        self.toolbox = toolbox
        self.scorer = scorer
        self.max_steps = int(max_steps)
        self.prefix = PrefixCache(case.degraded, toolbox, perceive=perceive, enabled=cache)
        self.catalogue = {n: t.describe() for n, t in toolbox.catalogue().items()}
        h, w = case.degraded.shape[:2]
        self.megapixels = h * w / 1e6
        self._nr: dict[tuple[str, ...], tuple[float, float]] = {}
        self.oracle_psnrs: list[float] = []

    # -- shared helpers ----------------------------------------------------------------------
    def tools_for(self, task: Task) -> list[str]:
        """Every tool of the library for ``task``, default first."""
        return rank_tools(task, self.catalogue, self.megapixels)

    def default_tool(self, task: Task) -> str | None:
        tools = self.tools_for(task)
        return tools[0] if tools else None

    def nr(self, node: Node) -> tuple[float, float]:
        """(no-reference quality of the node's image, seconds it took), computed once per node."""
        if node.key not in self._nr:
            t0 = time.perf_counter()
            value = float(self.scorer.score(node.image).nr)
            self._nr[node.key] = (value, time.perf_counter() - t0)
        return self._nr[node.key]

    def perceived_tasks(self) -> tuple[list[Task], float]:
        """Tasks for what perception finds in the input (restoration order), and its cost."""
        report = self.prefix.report(self.prefix.root)
        present = {TASK_FOR[Degradation(f.degradation)] for f in report.present()}
        return [t for t in RESTORATION_ORDER if t in present], self.prefix.root.report_seconds

    def run(self, strategy: str) -> Outcome:
        if self.planner is not None and strategy == planner_strategy(self.planner[0]):
            name, make = self.planner
            outcome = self._agent(planner=make(), planner_name=name)
            outcome.strategy = strategy
            return outcome
        fn = getattr(self, f"_{strategy}", None)
        if strategy not in (*STRATEGIES, *EXTRA_STRATEGIES) or fn is None:
            raise ValueError(f"unknown strategy {strategy!r} (known: {', '.join((*STRATEGIES, *EXTRA_STRATEGIES))})")
        return fn()

    def _walk(self, strategy: str, tools: list[str]) -> Outcome:
        tools = tools[: self.max_steps]
        nodes = self.prefix.run(tools)
        image = nodes[-1].image if nodes else self.case.degraded
        failed = [n.key[-1] for n in nodes if n.error]
        return Outcome(
            strategy,
            image,
            [t for t, n in zip(tools, nodes, strict=True) if not n.error],
            len(tools),
            sum(n.step_seconds for n in nodes),
            {"failed": failed} if failed else {},
        )

    # -- the strategies ------------------------------------------------------------------------
    def _none(self) -> Outcome:
        return Outcome("none", self.case.degraded, [], 0, 0.0)

    def _random(self) -> Outcome:
        rng = np.random.default_rng(zlib.crc32(f"random|{self.case.seed}".encode()))
        tasks = list(self.case.tasks)
        order = [tasks[i] for i in rng.permutation(len(tasks))]
        tools = []
        for task in order:
            options = sorted(self.tools_for(task))
            if options:
                tools.append(options[int(rng.integers(len(options)))])
        return self._walk("random", tools)

    def _fixed(self) -> Outcome:
        tasks = [t for t in RESTORATION_ORDER if t in set(self.case.tasks)]
        tools = [d for d in (self.default_tool(t) for t in tasks) if d is not None]
        return self._walk("fixed", tools)

    def _try(self, node: Node, tool: str) -> tuple[Node, float | None, float]:
        """Run ``tool`` after ``node``: (child, its NR score or None if the tool failed, seconds)."""
        child = self.prefix.step(node, tool)
        if child.error:
            return child, None, child.step_seconds
        q, s = self.nr(child)
        return child, q, child.step_seconds + s

    def _greedy(self) -> Outcome:
        candidates, seconds = self.perceived_tasks()
        node, calls, plan = self.prefix.root, 0, []
        current, s = self.nr(node)
        seconds += s
        while candidates and calls < self.max_steps:
            tried: list[tuple[float, int, Task, Node]] = []
            for i, task in enumerate(candidates):
                tool = self.default_tool(task)
                if tool is None or calls >= self.max_steps:
                    continue
                child, q, s = self._try(node, tool)
                calls += 1
                seconds += s
                if q is not None:
                    tried.append((q, -i, task, child))
            if not tried:
                break
            q, _, task, best = max(tried, key=lambda t: (t[0], t[1]))
            if q <= current + NR_MIN_GAIN:
                break
            node, current = best, q
            plan.append(best.key[-1])
            candidates = [t for t in candidates if t != task]
        return Outcome("greedy", node.image, plan, calls, seconds)

    def _explore(self) -> Outcome:
        candidates, seconds = self.perceived_tasks()
        node, calls, plan = self.prefix.root, 0, []
        current, s = self.nr(node)
        seconds += s
        for task in candidates:
            tried: list[tuple[float, int, Node]] = []
            for i, tool in enumerate(self.tools_for(task)):
                if calls >= self.max_steps:
                    break
                child, q, s = self._try(node, tool)
                calls += 1
                seconds += s
                if q is not None:
                    tried.append((q, -i, child))
            if tried:
                q, _, best = max(tried, key=lambda t: (t[0], t[1]))
                if q > current + NR_MIN_GAIN:  # else: roll back, the image stays as it was
                    node, current = best, q
                    plan.append(best.key[-1])
            if calls >= self.max_steps:
                break
        return Outcome("explore", node.image, plan, calls, seconds)

    def _agent_unguarded(self) -> Outcome:
        outcome = self._agent(guard=False)
        outcome.strategy = "agent_unguarded"
        return outcome

    def _agent_unvouched(self) -> Outcome:
        outcome = self._agent(guard_vouch=False)
        outcome.strategy = "agent_unvouched"
        return outcome

    def _agent_trials(self) -> Outcome:
        outcome = self._agent(sibling_trials=True)
        outcome.strategy = "agent_trials"
        return outcome

    def _agent(
        self, guard: bool = True, sibling_trials: bool = False, guard_vouch: bool = True, planner: Any = None,
        planner_name: str = "heuristic",
    ) -> Outcome:
        from restora.agent import restore
        from restora.planners.heuristic import HeuristicPlanner

        result = restore(
            self.case.degraded,
            planner=planner if planner is not None else HeuristicPlanner(),
            toolbox=self.toolbox,
            scorer=self.scorer,
            max_steps=self.max_steps,
            source=f"{self.case.image}:{self.case.combo}",
            guard=guard,
            sibling_trials=sibling_trials,
            guard_vouch=guard_vouch,
        )
        return Outcome(
            "agent",
            result.image,
            list(result.accepted),
            int(result.tool_calls),
            float(result.seconds),
            {"stop_reason": result.stop_reason, "records": result.records, "planner": planner_name, **planner_counts(result.records)},
        )

    def pipelines(self) -> list[tuple[str, ...]]:
        """Every pipeline of the true tasks: each order x each tool per task (sorted)."""
        out = set()
        for order in itertools.permutations(self.case.tasks):
            options = [self.tools_for(t) for t in order]
            if all(options):
                out.update(itertools.product(*options))
        return sorted(out)

    def _oracle(self) -> Outcome:
        t0 = time.perf_counter()
        executions0, work0 = self.prefix.executions, self.prefix.work_seconds
        best: tuple[float, tuple[str, ...], Node] | None = None
        psnrs = []
        pipes = self.pipelines()
        for pipe in pipes:
            nodes = self.prefix.run(pipe)
            value = psnr(nodes[-1].image, self.case.clean)
            psnrs.append(value)
            if best is None or value > best[0]:
                best = (value, pipe, nodes[-1])
        self.oracle_psnrs = psnrs
        if best is None:
            return Outcome("oracle", self.case.degraded, [], 0, 0.0, {"pipelines": 0})
        # cost of the enumeration with the prefix cache: distinct nodes it needed, and the
        # recorded seconds of computing them (also when other strategies computed them first)
        needed: dict[tuple[str, ...], float] = {}
        for pipe in pipes:
            node = self.prefix.root
            for t in pipe:
                node = node.children.get(t) if self.prefix.enabled else None
                if node is None:
                    break
                needed[node.key] = node.step_seconds
        if self.prefix.enabled:
            calls, seconds = len(needed), sum(needed.values())
        else:
            calls = self.prefix.executions - executions0
            seconds = self.prefix.work_seconds - work0
        seconds += time.perf_counter() - t0 - (self.prefix.work_seconds - work0)  # scoring
        return Outcome(
            "oracle",
            best[2].image,
            [t for t in best[1]],
            calls,
            max(seconds, 0.0),
            {"pipelines": len(pipes), "naive_calls": sum(len(p) for p in pipes)},
        )

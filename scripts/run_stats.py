"""Summarise the traces of a `restora run` output folder: seconds and tool calls per image, and
which tools were accepted most.

    python scripts/run_stats.py out/real_nogt
"""

import sys
from collections import Counter
from pathlib import Path

from restora.traces import read_trace

folder = Path(sys.argv[1])
ends, accepted, rolled, tried, stops = [], Counter(), Counter(), Counter(), Counter()
for f in sorted(folder.rglob("*.trace.jsonl")):
    records = read_trace(f)
    end = records[-1]
    ends.append(end)
    accepted.update(end.accepted)
    stops[end.stop_reason.split(":")[0].split(" (")[0]] += 1
    for r in records:
        if r.event == "step" and r.action.kind == "tool":
            tried[r.action.tool] += 1
            if r.decision == "rollback":
                rolled[r.action.tool] += 1
n = len(ends)
if not n:
    sys.exit(f"no traces under {folder}")
print(f"images: {n}")
print(f"mean seconds per image: {sum(e.seconds for e in ends) / n:.2f}")
print(f"mean tool calls per image: {sum(e.tool_calls for e in ends) / n:.2f}")
print(f"mean kept steps per image: {sum(len(e.accepted) for e in ends) / n:.2f}")
print(f"images with no tool call: {sum(e.tool_calls == 0 for e in ends)}")
print(f"mean overall quality in -> out: {sum(e.scores_input['overall'] for e in ends) / n:.3f} -> "
      f"{sum(e.scores_final['overall'] for e in ends) / n:.3f}")
print("tools (accepted / tried / rolled back):")
for tool, k in tried.most_common():
    print(f"  {tool:24s} {accepted[tool]:3d} / {k:3d} / {rolled[tool]:3d}")
print("stop reasons:", dict(stops))

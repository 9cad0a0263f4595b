"""Print the README's benchmark tables from ``restora bench`` outputs (numbers are copied, never typed).

    .venv/bin/python scripts/readme_bench_section.py out/bench-full-256 out/bench-real > /tmp/section.md
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def f(v, d=2):
    return "–" if v is None else f"{v:.{d}f}"


def mio(path: Path) -> list[str]:
    r = json.loads((path / "results.json").read_text())
    s = r["strategies"]
    lines = [
        f"`restora bench mio` on {r['images']} clean photos x {len(r['combos'])} combinations = "
        f"{len(r['cases']) // len(s)} cases, size {r['size']}, seed {r['seed']}, max steps {r['max_steps']}; "
        f"{r['seconds'] / 60:.0f} min wall with {r['workers']} workers on this 2-core machine.",
        "",
        "| strategy | PSNR | SSIM | rank % | tool calls | seconds | PSNR A | PSNR B | PSNR C |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, body in s.items():
        o, g = body["overall"], body["groups"]
        lines.append(
            f"| {name} | {f(o['psnr'])} | {f(o['ssim'], 3)} | {f(o['rank_pct'], 1)} | {f(o['tool_calls'], 1)} | {f(o['seconds'])} "
            f"| {f(g.get('A', {}).get('psnr'))} | {f(g.get('B', {}).get('psnr'))} | {f(g.get('C', {}).get('psnr'))} |"
        )
    c = r["cache"]
    lines += [
        "",
        f"Prefix cache: {c['executions']} tool executions served {c['requests']} requested steps "
        f"({c['requests'] / c['executions']:.2f}x fewer runs); recorded cost of the requested steps "
        f"{c['seconds']['requested'] / 60:.0f} min against {c['seconds']['work'] / 60:.0f} min computed "
        f"({c['seconds']['requested'] / c['seconds']['work']:.2f}x).",
    ]
    return lines


def real(path: Path) -> list[str]:
    r = json.loads((path / "results.json").read_text())
    limit = "" if r["limit"] is None else f", the first {r['limit']} of each set"
    lines = [
        f"`restora bench real` ({r['images']} images{limit}; {r['seconds'] / 60:.0f} min wall).",
        "",
        "| set (task) | pairs | none | best single tool | agent | agent tool calls |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, body in r["gt"].items():
        st = body["strategies"]
        singles = {k: v for k, v in st.items() if k not in ("none", "agent")}
        best = max(singles.items(), key=lambda kv: kv[1]["psnr"]) if singles else None
        best_txt = f"{f(best[1]['psnr'])} / {f(best[1]['ssim'], 3)} ({best[0]})" if best else "–"
        lines.append(
            f"| {name} ({body['task']}) | {body['pairs']} | {f(st['none']['psnr'])} / {f(st['none']['ssim'], 3)} | {best_txt} "
            f"| {f(st['agent']['psnr'])} / {f(st['agent']['ssim'], 3)} | {f(st['agent']['tool_calls'], 1)} |"
        )
    lines += ["", "PSNR / SSIM against the ground truth.", "",
              "| no ground truth | images | own score in -> out | NR no-harm | own no-harm | changed | tool calls |",
              "|---|---:|---|---:|---:|---:|---:|"]
    for name, body in r["nogt"].items():
        n, a = body["strategies"]["none"], body["strategies"]["agent"]
        lines.append(
            f"| {name} | {body['images']} | {f(n['overall'], 3)} -> {f(a['overall'], 3)} | {f(body['nr_no_harm_pct'], 0)}% "
            f"| {f(body['no_harm_pct'], 0)}% | {f(body['changed_pct'], 0)}% | {f(a['tool_calls'])} |"
        )
    lines += ["", "| clean input | images | returned unchanged | zero tool calls |", "|---|---:|---:|---:|"]
    for name, body in r["clean"].items():
        lines.append(f"| {name} | {body['images']} | {f(body['unchanged_pct'], 0)}% | {f(body['zero_calls_pct'], 0)}% |")
    return lines


if __name__ == "__main__":
    out = mio(Path(sys.argv[1])) + ["", ""] + real(Path(sys.argv[2]))
    print("\n".join(out))

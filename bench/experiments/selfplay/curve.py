#!/usr/bin/env python3
"""The learning curve of one or more runs, from what `curve.sh` measured: greedy accuracy by
depth at every milestone checkpoint, the minutes the run had taken to get there, and the share of
valid problems in the frontier band over the rounds before it — the proposer's and the generator
probe's at the same targets (`round.generator_probe`, evaluation rounds).

    python3 curve.py RUN_DIR [RUN_DIR ...] [--depths 2 3 4 5] [--markdown]

Prints JSON (one object a run) or, with --markdown, one table a run. Accuracy is paired against
round 0 (the warm start) over the same problems: `±` is the standard error of that difference."""
import argparse
import json
import sys
from pathlib import Path

from jsonl import load_jsonl, mean_and_se


def paired(base, now):
    """Mean and standard error of `now − base` over the same problems (lists of 0/1)."""
    return mean_and_se([b - a for a, b in zip(base, now)])


def mean_of(rows, key):
    values = [r[key] for r in rows if r.get(key) is not None]
    return sum(values) / len(values) if values else None


def curve(run_dir, depths):
    run = Path(run_dir)
    points = sorted((run / "curve").glob("round-*.items.jsonl"))
    if not points:
        sys.exit(f"curve.py: {run}/curve: nothing measured (run curve.sh first)")
    metrics = load_jsonl(run / "metrics.jsonl") if (run / "metrics.jsonl").exists() else []
    by_round = {m["round"]: m for m in metrics}
    start = min((m["wall_time"] for m in metrics if "wall_time" in m), default=None)
    items = {int(p.name[6:12]): load_jsonl(p) for p in points}
    if 0 not in items:
        sys.exit(f"curve.py: {run}/curve: no round 0 (the warm start's checkpoint) to pair against")
    base = items[0]
    out = []
    previous = 0
    for rnd in sorted(items):
        now = items[rnd]
        if [i["problem"] for i in now] != [i["problem"] for i in base]:
            sys.exit(f"curve.py: {run}: round {rnd} was measured on other problems than round 0")
        point = {"round": rnd, "greedy": {}, "change": {}}
        for d in depths:
            idx = [k for k, i in enumerate(base) if i.get("depth") == d]
            if not idx:
                continue
            a = [int(base[k]["greedy"]) for k in idx]
            b = [int(now[k]["greedy"]) for k in idx]
            point["greedy"][d] = sum(b) / len(b)
            point["change"][d] = paired(a, b)
        window = [by_round[r] for r in range(previous + 1, rnd + 1) if r in by_round]
        point["minutes"] = (
            (by_round[rnd]["wall_time"] - start) / 60 if rnd in by_round and start is not None else None
        )
        point["in_band"] = mean_of(window, "band_fraction")
        point["generator_in_band"] = mean_of(window, "generator_band_fraction")
        out.append(point)
        previous = rnd
    return {"run": str(run), "per_depth": sum(1 for i in base if i.get("depth") == depths[0]), "points": out}


def fmt(x, spec=".3f"):
    return "-" if x is None else format(x, spec)


def markdown(result, depths):
    lines = [f"{result['run']} ({result['per_depth']} problems a depth; change paired against round 0)", ""]
    head = " | ".join(f"d{d}" for d in depths)
    lines.append(f"| round | minutes | {head} | in band (proposer / generator probe) |")
    lines.append("|" + "---|" * (len(depths) + 3))
    for p in result["points"]:
        cells = []
        for d in depths:
            if d not in p["greedy"]:
                cells.append("-")
                continue
            m, se = p["change"][d]
            cells.append(f"{p['greedy'][d]:.3f} ({m:+.3f} ± {se:.3f})" if p["round"] else f"{p['greedy'][d]:.3f}")
        band = f"{fmt(p['in_band'], '.2f')} / {fmt(p['generator_in_band'], '.2f')}" if p["round"] else ""
        lines.append(f"| {p['round']} | {fmt(p['minutes'], '.0f')} | {' | '.join(cells)} | {band} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--depths", nargs="+", type=int, default=[2, 3, 4, 5])
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    results = [curve(r, args.depths) for r in args.runs]
    if args.markdown:
        print("\n\n".join(markdown(r, args.depths) for r in results))
    else:
        print(json.dumps(results))


if __name__ == "__main__":
    main()

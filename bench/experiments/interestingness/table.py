#!/usr/bin/env python3
"""The README's table of one weighted arm against weight 0, from analyze.py's output.

    table.py RESULT.json "LABEL"   # LABEL names the weighted arm, e.g. "frontier, w = 4"
"""

import json
import statistics
import sys

COLS = ["mean_preference_score", "mean_frontier", "mean_depth", "padded_fraction", "valid_fraction"]
PAIRS = ["scorer_prefers_on", "person_prefers_on", "person_prefers_on_expected"]


def row(seed, name, summary, pairs):
    cells = [f"{summary[c]:.2f}" if c == "mean_depth" else f"{summary[c]:.3f}" for c in COLS]
    paired = [f"{p:.3f}" if p is not None else "" for p in pairs]
    print(f"| {seed} | {name} | {cells[0]} | " + " | ".join(paired + cells[1:]) + " |")


def main():
    with open(sys.argv[1]) as f:
        result = json.load(f)
    label = sys.argv[2]
    seeds = result["seeds"]
    print("| seed | arm | preference score | scorer prefers this arm | person prefers it (labels) "
          "| person's probability | frontier reward | depth | padded | valid |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for seed, v in seeds.items():
        row(seed, label, v["on"], [v.get(k) for k in PAIRS])
        row(seed, "w = 0", v["off"], [None] * len(PAIRS))
    mean = {arm: {c: statistics.fmean(v[arm][c] for v in seeds.values()) for c in COLS} for arm in ("on", "off")}
    row("mean", label, mean["on"], [statistics.fmean(v[k] for v in seeds.values()) if all(
        v.get(k) is not None for v in seeds.values()) else None for k in PAIRS])
    row("mean", "w = 0", mean["off"], [None] * len(PAIRS))
    if "pooled" in result:
        p = result["pooled"]
        print(f"\nPooled labels: the person prefers the weighted arm's problem in {p['person_prefers_on']:.3f} "
              f"of {p['labels']} (95% CI {p['ci95'][0]:.3f}–{p['ci95'][1]:.3f}).")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Deductions and abductions apart: what each run's solver gained on each, and what its proposer wrote.

    by_kind.py OUT_DIR RUN [RUN ...] [--windows 10] [--against RUN]

OUT_DIR is a `bench/experiments/selfplay/run.sh` output directory: its `warmstart-items.jsonl`
(the warm start's per-problem outcomes on the benchmark) and, per RUN (`default-1`, ...),
`RUN/items.jsonl` (the same problems after the run) and `RUN/valid.jsonl` (its valid proposals).
Prints one JSON object a run:

- `paired_change`: by kind and depth (and over all depths, `"all"`, and over everything,
  `"all"` → `"all"`), greedy and sampled accuracy before, after, the mean change over the same
  problems and its standard error;
- `proposals`: per window of the run, the share of valid proposals that are abductions, and by
  kind the share of those in the frontier band [0.2, 0.8].

An abduction (a program and an output, answered by an input) is written with `=` after its output
expression; a deduction (a program and its input, answered by the output) is not.
"""

import argparse
import json
import statistics


def is_abduction(text):
    """Whether `text` asks for an input: its last top-level segment (the output) has an `=`."""
    depth, last = 0, 0
    for i, c in enumerate(text):
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        elif c == ";" and depth == 0:
            last = i + 1
    return "=" in text[last:]


def kind(text):
    return "abduction" if is_abduction(text) else "deduction"


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def paired_change(before, after):
    after = {o["problem"]: o for o in after}
    measures = {"greedy": lambda o: float(o["greedy"]),
                "sampled": lambda o: o["correct_samples"] / o["samples"]}
    groups = {}
    for b in before:
        a = after.get(b["problem"])
        if a is not None and b["samples"] and a["samples"]:
            for group in ((kind(b["problem"]), b["depth"]), (kind(b["problem"]), "all"), ("all", "all")):
                groups.setdefault(group, []).append((b, a))
    out = {}
    for (k, depth), pairs in sorted(groups.items(), key=lambda g: (g[0][0], str(g[0][1]))):
        row = {"n": len(pairs)}
        for name, f in measures.items():
            diffs = [f(a) - f(b) for b, a in pairs]
            row[name] = {
                "before": round(statistics.fmean(f(b) for b, _ in pairs), 4),
                "after": round(statistics.fmean(f(a) for _, a in pairs), 4),
                "change": round(statistics.fmean(diffs), 4),
                "se": round(statistics.stdev(diffs) / len(diffs) ** 0.5, 4) if len(diffs) > 1 else None,
            }
        out.setdefault(k, {})[str(depth)] = row
    return out


def proposals(rows, windows):
    if not rows:
        return []
    last = max(r["round"] for r in rows)
    out = []
    for w in range(windows):
        lo, hi = last * w / windows, last * (w + 1) / windows
        span = [r for r in rows if lo < r["round"] <= hi]
        entry = {"rounds": [int(lo) + 1, int(hi)], "valid": len(span)}
        if span:
            entry["abduction_share"] = round(sum(is_abduction(r["text"]) for r in span) / len(span), 4)
            for k in ("deduction", "abduction"):
                mine = [r for r in span if kind(r["text"]) == k and r.get("solve_rate") is not None]
                entry[f"{k}_in_band"] = (round(sum(0.2 <= r["solve_rate"] <= 0.8 for r in mine) / len(mine), 4)
                                         if mine else None)
        out.append(entry)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir")
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--windows", type=int, default=10)
    ap.add_argument("--against", metavar="RUN",
                    help="changes from RUN's solver (RUN/items.jsonl) instead of the warm start's")
    a = ap.parse_args()
    base = f"{a.out_dir}/{a.against}/items.jsonl" if a.against else f"{a.out_dir}/warmstart-items.jsonl"
    before = read_jsonl(base)
    for run in a.runs:
        d = f"{a.out_dir}/{run}"
        print(json.dumps({
            "run": run,
            "paired_change": paired_change(before, read_jsonl(f"{d}/items.jsonl")),
            "proposals": proposals(read_jsonl(f"{d}/valid.jsonl"), a.windows),
        }))


if __name__ == "__main__":
    main()

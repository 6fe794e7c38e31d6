#!/usr/bin/env python3
"""What operators a run's fresh in-band problems use, in its first and last tenth of rounds: the
share of each operator among their canonical forms' operators, and their mean depth.

    python3 operators.py RUN_DIR [RUN_DIR ...]   # reads RUN_DIR/valid.jsonl (run.sh exports it)"""
import re
import sys

from jsonl import load_jsonl


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    print("| run | tenth | problems | `+` | `-` | `*` | mean depth |")
    print("|---|---|---|---|---|---|---|")
    for run in sys.argv[1:]:
        rows = load_jsonl(f"{run}/valid.jsonl")
        last = max(r["round"] for r in rows)
        for tenth, lo, hi in (("first", 0, last * 0.1), ("last", last * 0.9, last + 1)):
            picked = [r for r in rows if lo <= r["round"] < hi and r.get("repetition") == "fresh"
                      and r.get("solve_rate") is not None and 0.2 <= r["solve_rate"] <= 0.8]
            ops = {"+": 0, "-": 0, "*": 0}
            for r in picked:
                for op in re.findall(r"[-+*]", r["canonical"]):
                    ops[op] += 1
            n = sum(ops.values()) or 1
            depth = sum(r["depth"] for r in picked) / max(1, len(picked))
            print(f"| {run.rstrip('/').split('/')[-1]} | {tenth} | {len(picked)} | "
                  + " | ".join(f"{ops[o] / n:.2f}" for o in "+-*") + f" | {depth:.2f} |")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Arms against the generator arm on the benchmark, split by shape: problems whose canonical form
keeps a parenthesis (nested) and those that are chains (flat).

    python3 nested.py OUT_DIR [--seeds 1 2 3 4] [--arms default depth-reward] [--depths 3 4 5]
                      [--selfplay BIN]

Reads each run's per-problem outcomes (`ARM-SEED/items.jsonl`, written by run.sh) and the
benchmark's canonical forms (`selfplay judge --json`, cached as OUT_DIR/benchmark-judged.jsonl).
Differences are paired over the same problems and pooled over the seeds."""
import argparse
import subprocess
import sys
from pathlib import Path

from jsonl import load_jsonl, mean_and_se


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3, 4])
    ap.add_argument("--arms", nargs="+", default=["default", "depth-reward"])
    ap.add_argument("--depths", nargs="+", type=int, default=[3, 4, 5])
    ap.add_argument("--selfplay", default="target/release/selfplay")
    args = ap.parse_args()
    out = args.out_dir
    bench = load_jsonl(out / "benchmark.jsonl")
    judged_path = out / "benchmark-judged.jsonl"
    if not judged_path.exists():
        text = "".join(b["problem"] + "\n" for b in bench)
        judged = subprocess.run([args.selfplay, "judge", "--json", "-"], input=text, capture_output=True, text=True, check=True)
        judged_path.write_text(judged.stdout)
    judged = load_jsonl(judged_path)
    if len(judged) != len(bench):
        sys.exit(f"nested.py: {judged_path}: {len(judged)} lines for {len(bench)} benchmark problems (delete it to judge again)")
    nested = ["(" in (j.get("canonical") or "") for j in judged]
    print("| difference, paired over seeds " + " ".join(map(str, args.seeds)) + " | " + " | ".join(f"d{d} flat | d{d} nested" for d in args.depths) + " |")
    print("|---|" + "---|---|" * len(args.depths))
    for arm in args.arms:
        cells = []
        for d in args.depths:
            for shape in (False, True):
                diffs = []
                for s in args.seeds:
                    a, g = out / f"{arm}-{s}" / "items.jsonl", out / f"generator-{s}" / "items.jsonl"
                    if not (a.exists() and g.exists()):
                        continue
                    A, G = load_jsonl(a), load_jsonl(g)
                    diffs += [int(x["greedy"]) - int(y["greedy"]) for i, (x, y) in enumerate(zip(A, G))
                              if bench[i]["depth"] == d and nested[i] == shape]
                if len(diffs) < 2:
                    cells.append("-")
                    continue
                m, se = mean_and_se(diffs)
                cells.append(f"{m:+.3f} ± {se:.3f}")
        print(f"| {arm} − generator arm | " + " | ".join(cells) + " |")
    counts = " / ".join(f"d{d}: {sum(1 for i, b in enumerate(bench) if b['depth'] == d and nested[i])}" for d in args.depths)
    print(f"\nNested problems in the benchmark ({counts} of each depth's {sum(1 for b in bench if b['depth'] == args.depths[0])}).")


if __name__ == "__main__":
    main()

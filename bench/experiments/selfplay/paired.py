#!/usr/bin/env python3
"""Greedy accuracy of one solver minus another's, by depth, paired over the same benchmark
problems: each argument pair is two `selfplay eval --items` files of the same benchmark.

    python3 paired.py A_ITEMS B_ITEMS [A_ITEMS B_ITEMS ...] [--depths 2 3 4 5]

With several pairs (one a seed), the differences are pooled; `±` is their standard error."""
import argparse
import sys

from jsonl import load_jsonl, mean_and_se


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("items", nargs="+")
    ap.add_argument("--depths", nargs="+", type=int, default=[2, 3, 4, 5])
    args = ap.parse_args()
    if len(args.items) % 2:
        sys.exit("paired.py: give the items files in pairs (A B [A B ...])")
    diffs = {d: [] for d in args.depths}
    for a_path, b_path in zip(args.items[::2], args.items[1::2]):
        a, b = load_jsonl(a_path), load_jsonl(b_path)
        if [x["problem"] for x in a] != [y["problem"] for y in b]:
            sys.exit(f"paired.py: {a_path} and {b_path} hold different problems")
        for x, y in zip(a, b):
            if x.get("depth") in diffs:
                diffs[x["depth"]].append(int(x["greedy"]) - int(y["greedy"]))
    cells = []
    for d in args.depths:
        cells.append("-" if len(diffs[d]) < 2 else "{:+.3f} ± {:.3f}".format(*mean_and_se(diffs[d])))
    print("| " + " | ".join(f"d{d}" for d in args.depths) + " |")
    print("|" + "---|" * len(args.depths))
    print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()

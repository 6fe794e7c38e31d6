#!/usr/bin/env python3
"""Where on the benchmark self-play gains and loses, against the evaluation's own noise.

    where.py OUT_DIR RUN... --noise ITEMS...

Groups the benchmark problems of depths 2 and 3 by how the warm start did on them
(OUT_DIR/warmstart-items.jsonl, from `selfplay eval --items`): always right in its 8 samples,
or not — and then whether its greedy answer multiplies a number above 20 (a product of an
intermediate, which the warm start's one-step operations on literals up to 20 seldom show). For
each group: right samples at the warm start, after each RUN (OUT_DIR/RUN/items.jsonl, mean over
runs), and in re-evaluations of the warm start with other seeds (--noise: `selfplay eval --seed S
--items`, mean), which is where the groups move by chance alone: a group chosen for being always
right can only lose, one chosen for errors can only gain.
"""

import argparse
import re
import sys

from analyze import items


def load(path):
    """`analyze.items`, which must be there."""
    loaded = items(path)
    if loaded is None:
        sys.exit(f"no {path} (written by `selfplay eval --items`)")
    return loaded


def big_product(o):
    return any(max(abs(int(a)), abs(int(b))) > 20
               for a, b in re.findall(r"(-?\d+)\*\(?(-?\d+)", o["greedy_output"]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--noise", nargs="+", required=True)
    a = ap.parse_args()
    warm = load(f"{a.out}/warmstart-items.jsonl")
    runs = [load(f"{a.out}/{r}/items.jsonl") for r in a.runs]
    noise = [load(p) for p in a.noise]
    groups = [("always right", lambda o: o["correct_samples"] == o["samples"]),
              ("wrong, product above 20", lambda o: o["correct_samples"] < o["samples"] and big_product(o)),
              ("wrong, otherwise", lambda o: o["correct_samples"] < o["samples"] and not big_product(o))]
    mean_right = lambda evals, g: sum(e[o["problem"]]["correct_samples"] for e in evals for o in g) / len(evals)
    print("| depth | warm start's outcome | problems | samples | right: warm start | re-evaluated "
          "(noise) | after self-play | self-play − noise |")
    print("|---|---|---|---|---|---|---|---|")
    for depth in (2, 3):
        for name, chosen in groups:
            g = [o for o in warm.values() if o["depth"] == depth and chosen(o)]
            before = sum(o["correct_samples"] for o in g)
            by_chance, after = mean_right(noise, g), mean_right(runs, g)
            print(f"| {depth} | {name} | {len(g)} | {sum(o['samples'] for o in g)} | {before} | "
                  f"{by_chance:.1f} | {after:.1f} | {after - by_chance:+.1f} |")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The person of the interestingness experiment, simulated (no human rates here): a taste over
problems, and pairwise ratings drawn from it.

Taste: utility = distinct kinds of operation in the canonical form + 0.3 * depth - 2 * padding.
This person likes problems that mix operations, some depth, and dislikes padding. A rating of a
pair is drawn from the Bradley-Terry model P(a wins) = sigmoid(u(a) - u(b)) (ties never drawn).

    rater.py ratings JUDGED.jsonl N SEED   # N ratings as `selfplay rate import` reads them
    (JUDGED.jsonl: lines of `selfplay judge --json`)
"""

import json
import math
import random
import sys


def utility(canonical, depth, padding):
    kinds = sum(1 for op in "+-*" if op in canonical.lstrip("-"))
    return kinds + 0.3 * (depth or 0) - 2.0 * (padding or 0.0)


def prefers_a(ua, ub, rng):
    return rng.random() < 1.0 / (1.0 + math.exp(-(ua - ub)))


def ratings(judged_path, n, seed):
    rng = random.Random(seed)
    pool = []
    for line in open(judged_path):
        j = json.loads(line)
        if j.get("valid"):
            pool.append((j["problem"], utility(j["canonical"], j["depth"], j["padding"])))
    for _ in range(n):
        (a, ua), (b, ub) = rng.sample(pool, 2)
        winner = "a" if prefers_a(ua, ub, rng) else "b"
        print(json.dumps({"a": a, "b": b, "winner": winner}))


if __name__ == "__main__":
    if sys.argv[1] == "ratings":
        ratings(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        sys.exit(__doc__)

#!/usr/bin/env python3
"""Compares the runs of the interestingness experiment: for each seed, the late half of each arm's
archive (valid problems): mean preference score, mean frontier reward, valid and padded
fractions; and over 2,000 random pairs of one problem from each arm, how often the simulated
person prefers the weighted arm's problem (fresh labels, never used in fitting; pooled over seeds
with a 95% Wilson interval), the person's own probability of doing so, and how often the scorer
scores it higher.

    analyze.py OUT_DIR ARM ROUNDS SEEDS...   # reads OUT_DIR/{ARM,off}-SEED/late.jsonl

ARM names the weighted runs (run.sh: MODE-WEIGHT); in the output they are "on".
"""

import json
import math
import random
import statistics
import sys

from rater import prefers_a, utility


def load(path):
    rows = [json.loads(line) for line in open(path)]
    valid = [r for r in rows if r["valid"]]
    return rows, valid


def summary(rows, valid):
    mean = lambda xs: statistics.fmean(xs) if xs else None  # noqa: E731
    return {
        "problems": len(rows),
        "valid_fraction": len(valid) / max(1, len(rows)),
        "padded_fraction": mean([1.0 if (r["padding"] or 0) > 0 else 0.0 for r in valid]),
        "mean_preference_score": mean([r["interestingness"] for r in valid if r["interestingness"] is not None]),
        "mean_frontier": mean([r["rewards"]["frontier"] for r in valid if r["rewards"]["frontier"] is not None]),
        "mean_depth": mean([r["depth"] for r in valid]),
        "mean_person_utility": mean([utility(r["canonical"], r["depth"], r["padding"]) for r in valid]),
    }


def wilson(k, n, z=1.96):
    """95% Wilson score interval of k successes in n."""
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [centre - half, centre + half]


def main():
    out, on_arm, rounds, seeds = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
    result = {"arm": on_arm, "rounds": rounds, "late_half_from_round": rounds // 2 + 1, "seeds": {}}
    all_wins, all_pairs = 0, 0
    for seed in seeds:
        arms = {arm: load("%s/%s-%s/late.jsonl" % (out, name, seed))
                for arm, name in (("on", on_arm), ("off", "off"))}
        rng = random.Random(int(seed))
        on, off = arms["on"][1], arms["off"][1]
        wins, chance, scorer = 0, 0.0, 0.0
        pairs = 2000 if on and off else 0
        for _ in range(pairs):
            a, b = rng.choice(on), rng.choice(off)
            ua = utility(a["canonical"], a["depth"], a["padding"])
            ub = utility(b["canonical"], b["depth"], b["padding"])
            wins += prefers_a(ua, ub, rng)
            chance += 1.0 / (1.0 + math.exp(-(ua - ub)))
            sa, sb = a["interestingness"], b["interestingness"]
            if sa is not None and sb is not None:
                scorer += 1.0 if sa > sb else 0.5 if sa == sb else 0.0
        all_wins, all_pairs = all_wins + wins, all_pairs + pairs
        result["seeds"][seed] = {
            "on": summary(*arms["on"]),
            "off": summary(*arms["off"]),
            "person_prefers_on": wins / pairs if pairs else None,
            # The person's own probability of preferring the weighted arm's problem, averaged over
            # the same pairs: what the labels estimate, without their noise.
            "person_prefers_on_expected": chance / pairs if pairs else None,
            # How often the scorer scores the weighted arm's problem higher (ties count half).
            "scorer_prefers_on": scorer / pairs if pairs else None,
        }
    if all_pairs:
        result["pooled"] = {"labels": all_pairs, "person_prefers_on": all_wins / all_pairs,
                            "ci95": wilson(all_wins, all_pairs)}
    json.dump(result, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()

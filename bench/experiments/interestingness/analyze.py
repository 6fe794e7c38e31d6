#!/usr/bin/env python3
"""Compares the runs of the interestingness experiment: for each seed, the late half of each arm's
archive (valid problems): mean preference score, mean frontier reward, valid and padded fractions,
and how often the simulated person prefers a problem of the weighted arm to one of the unweighted
arm (fresh labels, never used in fitting).

    analyze.py OUT_DIR ARM ROUNDS SEEDS...   # reads OUT_DIR/{ARM,off}-SEED/late.jsonl

ARM names the weighted runs (run.sh: MODE-WEIGHT); in the output they are "on".
"""

import json
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


def main():
    out, on_arm, rounds, seeds = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
    result = {"arm": on_arm, "rounds": rounds, "late_half_from_round": rounds // 2 + 1, "seeds": {}}
    for seed in seeds:
        arms = {arm: load("%s/%s-%s/late.jsonl" % (out, name, seed))
                for arm, name in (("on", on_arm), ("off", "off"))}
        rng = random.Random(int(seed))
        on, off = arms["on"][1], arms["off"][1]
        wins = 0
        pairs = 2000 if on and off else 0
        for _ in range(pairs):
            a, b = rng.choice(on), rng.choice(off)
            wins += prefers_a(utility(a["canonical"], a["depth"], a["padding"]),
                              utility(b["canonical"], b["depth"], b["padding"]), rng)
        result["seeds"][seed] = {
            "on": summary(*arms["on"]),
            "off": summary(*arms["off"]),
            "person_prefers_on": wins / pairs if pairs else None,
        }
    json.dump(result, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()

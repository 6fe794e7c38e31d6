#!/usr/bin/env python3
"""What a proposer writes after a reference problem, against what it writes without one.

    python3 bench/experiments/selfplay/references.py RUN_DIR/all.jsonl [--last-tenth] [--band 0.2 0.8]

The input is a run's whole archive (`selfplay archive --run-dir RUN_DIR export --format jsonl
--out all.jsonl`: invalid problems too). For the proposals with a reference and those without:
how many, the valid share, the in-band share of the valid ones, and for those with one, the share
that are near it — of its depth or one off, keeping all its literals but at most two, the most
one edit changes (`Domain::mutate`) — and the mean distance between their solve rates.
"""
import argparse
import json
import re
import sys


def literals(text):
    return re.findall(r"\d+", text)


def near(problem, reference):
    """One edit or so away: depths within one, all the reference's literals kept but two."""
    if problem.get("depth") is None or reference.get("depth") is None:
        return False
    if abs(problem["depth"] - reference["depth"]) > 1:
        return False
    left = literals(problem["text"])
    kept = 0
    for lit in literals(reference["text"]):
        if lit in left:
            left.remove(lit)
            kept += 1
    return kept + 2 >= len(literals(reference["text"]))


def summary(records, by_id, band):
    low, high = band
    valid = [r for r in records if r["valid"]]
    scored = [r for r in valid if r.get("solve_rate") is not None]
    out = {
        "proposals": len(records),
        "valid": len(valid) / max(1, len(records)),
        "in_band_of_valid": sum(low <= r["solve_rate"] <= high for r in scored) / max(1, len(scored)),
    }
    with_ref = [(r, by_id.get(r["references"][0])) for r in valid if r["references"]]
    with_ref = [(r, ref) for r, ref in with_ref if ref is not None]
    if with_ref:
        out["near_reference"] = sum(near(r, ref) for r, ref in with_ref) / len(with_ref)
        pairs = [(r["solve_rate"], ref["solve_rate"]) for r, ref in with_ref
                 if r.get("solve_rate") is not None and ref.get("solve_rate") is not None]
        if pairs:
            out["reference_in_band"] = sum(low <= q <= high for _, q in pairs) / len(pairs)
            out["mean_abs_rate_gap"] = sum(abs(p - q) for p, q in pairs) / len(pairs)
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("records")
    p.add_argument("--last-tenth", action="store_true", help="only the last tenth of the rounds")
    p.add_argument("--band", nargs=2, type=float, default=[0.2, 0.8])
    args = p.parse_args()
    with open(args.records) as f:
        records = [json.loads(line) for line in f if line.strip()]
    by_id = {r["id"]: r for r in records}
    rounds = max((r["round"] for r in records), default=0)
    if args.last_tenth:
        records = [r for r in records if r["round"] > rounds - max(1, rounds // 10)]
    # Proposals only: round 0 holds nothing the proposer wrote.
    records = [r for r in records if r["round"] > 0]
    result = {
        "rounds": rounds,
        "with_reference": summary([r for r in records if r["references"]], by_id, args.band),
        "without_reference": summary([r for r in records if not r["references"]], by_id, args.band),
    }
    json.dump(result, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()

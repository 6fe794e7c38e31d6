#!/usr/bin/env python3
"""The table of edit_landscape.sh: for each edit size and depth change, how many mutations of
in-band references were scored, the share in band, the mean distance of their solve rate from
their reference's, and the share that moved it by more than 0.3.

    python3 bench/experiments/selfplay/edit_landscape.py OUT_DIR [--band 0.2 0.8] [--json]
"""
import argparse
import json
import statistics


def rates(path):
    """Solve rate by problem text, from `selfplay eval --items`."""
    out = {}
    for line in open(path):
        r = json.loads(line)
        out[r["problem"]] = r["correct_samples"] / r["samples"]
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--band", nargs=2, type=float, default=[0.2, 0.8])
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    low, high = a.band
    ref_rate = rates(f"{a.out}/references-items.jsonl")
    mut_rate = rates(f"{a.out}/mutations-items.jsonl")
    groups = {}
    for line in open(f"{a.out}/mutations.jsonl"):
        m = json.loads(line)
        q, r = mut_rate.get(m["problem"]), ref_rate.get(m["reference"])
        if q is None or r is None:
            continue
        groups.setdefault((m["edits"], m["change"]), []).append((q, r))
    rows = []
    for (edits, change), pairs in sorted(groups.items()):
        gaps = [abs(q - r) for q, r in pairs]
        rows.append({
            "edits": edits,
            "depth_change": change,
            "mutations": len(pairs),
            "in_band": sum(low <= q <= high for q, _ in pairs) / len(pairs),
            "mean_abs_gap": statistics.mean(gaps),
            "moved_over_0.3": sum(g > 0.3 for g in gaps) / len(gaps),
            "mean_rate": statistics.mean(q for q, _ in pairs),
        })
    refs = sum(low <= v <= high for v in ref_rate.values())
    if a.json:
        print(json.dumps({"references": len(ref_rate), "in_band_references": refs, "rows": rows}, indent=1))
        return
    print(f"{refs} of {len(ref_rate)} references in [{low}, {high}]")
    print("| edits | depth change | mutations | in band | mean abs rate gap | moved > 0.3 | mean rate |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['edits']} | {r['depth_change']:+d} | {r['mutations']} | {r['in_band']:.3f} | "
              f"{r['mean_abs_gap']:.3f} | {r['moved_over_0.3']:.3f} | {r['mean_rate']:.3f} |")


if __name__ == "__main__":
    main()

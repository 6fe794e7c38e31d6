#!/usr/bin/env python3
"""Self-play against its controls, paired over the same benchmark problems.

    python3 bench/experiments/selfplay/compare_arms.py OUT_DIR [--seeds 1 2 3] [--markdown]

OUT_DIR is what run.sh wrote with ABLATIONS="generator frozen-proposer depth-reward absolute-zero proposer-kl depth-kl self-train compose
compose-wide compose-strong frontier-refs frontier-self-train frontier-evidence generator-frontier generator-frontier-fresh
step-credit generator-step-credit" (any of them): runs default-S and ARM-S, each with items.jsonl (one benchmark problem a line, as
`selfplay eval --items` writes it) and metrics.jsonl, and warmstart-items.jsonl.

For each arm: rounds run, the in-band share of its fresh valid problems (`band_fraction`) in the
first and last tenth of its rounds, problems the solver trained on per round, and greedy and
sampled accuracy by depth. For self-play against each control and against the warm start: the
greedy difference by depth, paired problem by problem, with its standard error; with more than
one seed, also over the seeds together (each problem's difference averaged over the seeds, the
standard error over problems) and the spread of the seeds' own differences. Where a run has
`valid.jsonl` (run.sh exports it), the shares by essential depth of its fresh problems in the
band: what its solver was offered to learn from.
"""
import argparse
import json
import math
import os
import sys

ARMS = ["default", "generator", "frozen-proposer", "depth-reward", "absolute-zero", "proposer-kl", "depth-kl", "self-train", "compose", "compose-wide", "compose-strong",
        "frontier-refs", "frontier-self-train", "frontier-evidence", "generator-frontier",
        "generator-frontier-fresh", "step-credit", "generator-step-credit"]
COMPOSE_ARMS = ["compose", "compose-wide", "compose-strong"]
# Each mechanism arm is compared with these, where they ran.
MECHANISM_ARMS = {
    "depth-reward": ["default", "generator"],
    "absolute-zero": ["default", "generator"],
    "proposer-kl": ["default", "generator"],
    "depth-kl": ["default", "generator", "depth-reward"],
    "frontier-refs": ["default", "generator", "generator-frontier"],
    "frontier-self-train": ["frontier-refs", "generator-frontier", "self-train"],
    "frontier-evidence": ["frontier-self-train", "generator-frontier", "generator"],
    "generator-frontier": ["generator"],
    "generator-frontier-fresh": ["generator-frontier", "generator"],
    "step-credit": ["default", "generator", "generator-step-credit"],
    "generator-step-credit": ["generator", "default"],
}


def read_lines(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def items(path):
    """Benchmark outcomes keyed by problem: (depth, greedy right, right samples / samples)."""
    out = {}
    for it in read_lines(path):
        out[it["problem"]] = it
    return out


def tenth_mean(metrics, key, last):
    n = max(1, len(metrics) // 10)
    part = metrics[-n:] if last else metrics[:n]
    values = [m[key] for m in part if m.get(key) is not None]
    return sum(values) / len(values) if values else None


def paired(a, b):
    """Mean and standard error of a - b by depth (greedy, 0/1), over the problems both have."""
    by_depth = {}
    for problem, x in a.items():
        y = b.get(problem)
        if y is None:
            continue
        by_depth.setdefault(x["depth"], []).append(float(x["greedy"]) - float(y["greedy"]))
    out = {}
    for d, diffs in sorted(by_depth.items()):
        n = len(diffs)
        mean = sum(diffs) / n
        var = sum((v - mean) ** 2 for v in diffs) / (n - 1) if n > 1 else 0.0
        out[d] = (mean, math.sqrt(var / n), n)
    return out


def pooled(per_seed):
    """Over seeds: each problem's greedy difference averaged over the seeds that have it, then
    the mean and standard error over problems by depth; and the seeds' own means' range."""
    by_problem = {}
    for a, b in per_seed:
        for problem, x in a.items():
            y = b.get(problem)
            if y is not None:
                slot = by_problem.setdefault(problem, (x["depth"], []))
                slot[1].append(float(x["greedy"]) - float(y["greedy"]))
    by_depth = {}
    for depth, diffs in by_problem.values():
        by_depth.setdefault(depth, []).append(sum(diffs) / len(diffs))
    seed_means = [paired(a, b) for a, b in per_seed]
    out = {}
    for d, diffs in sorted(by_depth.items()):
        n = len(diffs)
        mean = sum(diffs) / n
        var = sum((v - mean) ** 2 for v in diffs) / (n - 1) if n > 1 else 0.0
        means = [m[d][0] for m in seed_means if d in m]
        out[d] = (mean, math.sqrt(var / n), n, min(means), max(means))
    return out


def band_depths(path, band=(0.2, 0.8)):
    """Of a run's fresh valid problems with a solve rate in `band`: their count, the share of
    each essential depth (operations that change the value), and by depth the share that nest
    (a parenthesis left in the canonical form: not a chain evaluated left to right)."""
    counts, nested = {}, {}
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            rate = r.get("solve_rate")
            if r.get("repetition") != "fresh" or rate is None or not band[0] <= rate <= band[1]:
                continue
            d = r["essential_ops"]
            counts[d] = counts.get(d, 0) + 1
            nested[d] = nested.get(d, 0) + int("(" in (r.get("canonical") or ""))
    n = sum(counts.values())
    return n, {d: c / n for d, c in sorted(counts.items())}, {d: nested[d] / c for d, c in sorted(counts.items())}


def accuracy(its):
    by_depth = {}
    for it in its.values():
        slot = by_depth.setdefault(it["depth"], [0, 0, 0.0])
        slot[0] += 1
        slot[1] += int(it["greedy"])
        slot[2] += it.get("correct_samples", 0) / max(1, it.get("samples", 8))
    return {d: (g / n, s / n) for d, (n, g, s) in sorted(by_depth.items())}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--seeds", nargs="+", default=["1"])
    p.add_argument("--markdown", action="store_true")
    args = p.parse_args()
    warm = items(os.path.join(args.out, "warmstart-items.jsonl"))
    result = {"warm_start": {"accuracy": accuracy(warm)}, "runs": {}, "paired": {}, "pooled": {}}
    # (self-play, other) item sets per seed, for the pooled comparisons.
    pairs_by_control = {}
    for seed in args.seeds:
        loaded = {}
        for arm in ARMS:
            run = os.path.join(args.out, f"{arm}-{seed}")
            if not os.path.exists(os.path.join(run, "items.jsonl")):
                print(f"{run}: no items.jsonl (not run, or not finished)", file=sys.stderr)
                continue
            metrics = read_lines(os.path.join(run, "metrics.jsonl"))
            its = items(os.path.join(run, "items.jsonl"))
            loaded[arm] = its
            result["runs"][f"{arm}-{seed}"] = {
                "rounds": len(metrics),
                "band_first_tenth": tenth_mean(metrics, "band_fraction", last=False),
                "band_last_tenth": tenth_mean(metrics, "band_fraction", last=True),
                "valid_last_tenth": tenth_mean(metrics, "valid_fraction", last=True),
                "trained_per_round": sum(m["solver_problems_trained"] for m in metrics) / max(1, len(metrics)),
                "composed_per_round": sum(m.get("solver_composed", 0) for m in metrics) / max(1, len(metrics)),
                "accuracy": accuracy(its),
            }
            valid = os.path.join(run, "valid.jsonl")
            if os.path.exists(valid):
                n, shares, nested = band_depths(valid)
                result["runs"][f"{arm}-{seed}"]["fresh_in_band"] = n
                result["runs"][f"{arm}-{seed}"]["fresh_in_band_by_depth"] = shares
                result["runs"][f"{arm}-{seed}"]["fresh_in_band_nested_by_depth"] = nested
        if "default" in loaded:
            for other, its in [("warm start", warm)] + [(a, loaded[a]) for a in ARMS[1:3] if a in loaded]:
                result["paired"][f"self-play-{seed} - {other}"] = paired(loaded["default"], its)
                pairs_by_control.setdefault(f"self-play - {other}", []).append((loaded["default"], its))
        for arm in (a for a in COMPOSE_ARMS if a in loaded):
            for other, its in [("warm start", warm)] + [(a, loaded[a]) for a in ("default", "generator") if a in loaded]:
                result["paired"][f"{arm}-{seed} - {other}"] = paired(loaded[arm], its)
        for arm, others in MECHANISM_ARMS.items():
            for other in (o for o in others if arm in loaded and o in loaded):
                result["paired"][f"{arm}-{seed} - {other}"] = paired(loaded[arm], loaded[other])
                pairs_by_control.setdefault(f"{arm} - {other}", []).append((loaded[arm], loaded[other]))
            if arm in loaded:
                pairs_by_control.setdefault(f"{arm} - warm start", []).append((loaded[arm], warm))
        if "self-train" in loaded:
            for other in ["default", "generator"]:
                if other in loaded:
                    result["paired"][f"self-train-{seed} - {other}"] = paired(loaded["self-train"], loaded[other])
    if len(args.seeds) > 1:
        for label, per_seed in pairs_by_control.items():
            result["pooled"][f"{label}, {len(per_seed)} seeds"] = pooled(per_seed)
    if not args.markdown:
        json.dump(result, sys.stdout, indent=1)
        print()
        return
    depths = sorted(result["warm_start"]["accuracy"])
    print("| run | rounds | in band, first tenth → last | valid, last tenth | trained / round | composed / round "
          f"| greedy {' / '.join(f'd{d}' for d in depths)} |")
    print("|---|---|---|---|---|---|---|")
    for name, r in result["runs"].items():
        acc = " / ".join(f"{g:.3f}" for _, (g, _) in sorted(r["accuracy"].items()))
        fmt = lambda v: "-" if v is None else f"{v:.3f}"
        print(f"| {name} | {r['rounds']} | {fmt(r['band_first_tenth'])} → {fmt(r['band_last_tenth'])} "
              f"| {fmt(r['valid_last_tenth'])} | {r['trained_per_round']:.1f} | {r['composed_per_round']:.2f} | {acc} |")
    acc = " / ".join(f"{g:.3f}" for _, (g, _) in sorted(result["warm_start"]["accuracy"].items()))
    print(f"| warm start | | | | | | {acc} |")
    print()
    print(f"| greedy difference, paired | {' | '.join(f'depth {d}' for d in depths)} |")
    print("|---" * (len(depths) + 1) + "|")
    for name, by_depth in result["paired"].items():
        cells = " | ".join(f"{m:+.3f} ± {se:.3f}" for _, (m, se, _) in sorted(by_depth.items()))
        print(f"| {name} | {cells} |")
    with_depths = {name: r for name, r in result["runs"].items() if "fresh_in_band_by_depth" in r}
    if with_depths:
        shown = sorted({d for r in with_depths.values() for d in r["fresh_in_band_by_depth"]})
        print()
        print(f"| fresh problems in band | count | {' | '.join(f'{d} ops' for d in shown)} |")
        print("|---" * (len(shown) + 2) + "|")
        for name, r in with_depths.items():
            cells = " | ".join(f"{r['fresh_in_band_by_depth'].get(d, 0.0):.2f}" for d in shown)
            print(f"| {name} | {r['fresh_in_band']} | {cells} |")
        print()
        print(f"| fresh problems in band that nest | {' | '.join(f'{d} ops' for d in shown)} |")
        print("|---" * (len(shown) + 1) + "|")
        for name, r in with_depths.items():
            nested = r["fresh_in_band_nested_by_depth"]
            cells = " | ".join("-" if d not in nested else f"{nested[d]:.2f}" for d in shown)
            print(f"| {name} | {cells} |")
    if result["pooled"]:
        print()
        print(f"| greedy difference over seeds (seeds' range) | {' | '.join(f'depth {d}' for d in depths)} |")
        print("|---" * (len(depths) + 1) + "|")
        for name, by_depth in result["pooled"].items():
            cells = " | ".join(f"{m:+.3f} ± {se:.3f} ({lo:+.3f}..{hi:+.3f})"
                               for _, (m, se, _, lo, hi) in sorted(by_depth.items()))
            print(f"| {name} | {cells} |")


if __name__ == "__main__":
    main()

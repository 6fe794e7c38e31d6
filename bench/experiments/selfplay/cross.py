#!/usr/bin/env python3
"""Each arm measured on the problems the other arms' runs wrote: a benchmark that is not one
arm's own distribution.

    python3 cross.py OUT_DIR [--seeds 1 2 3 4] [--arms default generator depth-reward]
                     [--per-depth 500] [--depths 2 3 4 5] [--selfplay BIN] [--markdown]

For every seed s and source arm (`default`, the learnt proposer, and `generator`, the domain's
generator at the controller's targets), a benchmark is drawn from the run `SOURCE-s`: its fresh
valid problems of the second half of the run, one per canonical form, up to --per-depth a depth
(essential operations), leaving out every problem whose canonical form is in the archive of a
run measured on it. Every arm's runs of the other seeds, and the warm start, are measured on it
(greedy, `selfplay eval --samples 0`; cached under OUT_DIR/cross/). Differences are paired over
the same problems and pooled over the source seeds; `±` is the standard error of the pooled
differences, the parenthesis the lowest and highest measured seed's mean."""
import argparse
import json
import random
import subprocess
import sys
from pathlib import Path

from jsonl import load_jsonl, mean_and_se


def draw(source, excluded, per_depth, depths, seed=7):
    """The source run's fresh valid problems of its second half that no measured run archived."""
    rows = load_jsonl(source / "valid.jsonl")
    last = max(r["round"] for r in rows)
    known = set()
    for run in excluded:
        known.update(r["canonical_hash"] for r in load_jsonl(run / "valid.jsonl"))
    pool = [
        r for r in rows
        if r["round"] > last / 2 and r["repetition"] == "fresh" and r["depth"] in depths
        and r["canonical_hash"] not in known
    ]
    random.Random(seed).shuffle(pool)
    taken, used, out = {}, set(), []
    for r in pool:
        d = r["depth"]
        if taken.get(d, 0) >= per_depth or r["canonical_hash"] in used:
            continue
        used.add(r["canonical_hash"])
        taken[d] = taken.get(d, 0) + 1
        out.append({"problem": r["text"], "answer": r["answer"], "depth": d})
    return out


def last_checkpoint(run):
    ckpts = sorted((run / "checkpoints").glob("round-*"))
    if not ckpts:
        sys.exit(f"cross.py: {run}/checkpoints: no checkpoint")
    return ckpts[-1]


def measured(selfplay, checkpoint, benchmark, items):
    """Per-problem greedy outcomes of `checkpoint` on `benchmark`, measured once."""
    if not items.exists():
        tmp = items.with_suffix(".tmp")
        subprocess.run(
            [selfplay, "eval", "--checkpoint", str(checkpoint), "--benchmark", str(benchmark),
             "--samples", "0", "--json", "--items", str(tmp)],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        tmp.rename(items)
    return [int(r["greedy"]) for r in load_jsonl(items)]


def pooled(by_seed):
    """Mean, standard error over problems, count, and the lowest and highest seed's mean of
    differences kept by measured seed (the seeds' spread is what the problem-level error misses:
    one seed's checkpoint is measured on several source benchmarks)."""
    diffs = [d for v in by_seed.values() for d in v]
    means = [sum(v) / len(v) for v in by_seed.values()]
    mean, se = mean_and_se(diffs)
    return mean, se, len(diffs), min(means), max(means)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3, 4])
    ap.add_argument("--arms", nargs="+", default=["default", "generator", "depth-reward"])
    ap.add_argument("--per-depth", type=int, default=500)
    ap.add_argument("--depths", nargs="+", type=int, default=[2, 3, 4, 5])
    ap.add_argument("--selfplay", default="target/release/selfplay")
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    out = args.out_dir
    if "generator" not in args.arms:
        sys.exit("cross.py: --arms must include generator (every difference is against it)")
    runs = {(a, s): out / f"{a}-{s}" for a in args.arms for s in args.seeds if (out / f"{a}-{s}" / "valid.jsonl").exists()}
    cache = out / "cross"
    cache.mkdir(exist_ok=True)
    warm = out / "base" / "checkpoints" / "round-000000"
    # (source kind, arm, depth) -> paired differences against the generator arm of the same seed.
    diffs, over_warm, sizes = {}, {}, {}
    for source_kind in ("default", "generator"):
        for s in args.seeds:
            if (source_kind, s) not in runs:
                continue
            measured_runs = {k: v for k, v in runs.items() if k[1] != s}
            bench = cache / f"from-{source_kind}-{s}.jsonl"
            if not bench.exists():
                problems = draw(runs[(source_kind, s)], measured_runs.values(), args.per_depth, args.depths)
                bench.write_text("".join(json.dumps(p) + "\n" for p in problems))
            depth_of = [r["depth"] for r in load_jsonl(bench)]
            for d in args.depths:
                sizes.setdefault((source_kind, d), []).append(depth_of.count(d))
            base = measured(args.selfplay, warm, bench, cache / f"from-{source_kind}-{s}.warm-start.items.jsonl")
            outcome = {
                k: measured(args.selfplay, last_checkpoint(v), bench, cache / f"from-{source_kind}-{s}.{k[0]}-{k[1]}.items.jsonl")
                for k, v in measured_runs.items()
            }
            for (arm, t), got in outcome.items():
                for i, d in enumerate(depth_of):
                    over_warm.setdefault((source_kind, arm, d), {}).setdefault(t, []).append(got[i] - base[i])
                    if arm != "generator" and ("generator", t) in outcome:
                        paired = got[i] - outcome[("generator", t)][i]
                        diffs.setdefault((source_kind, arm, d), {}).setdefault(t, []).append(paired)
    result = {
        "seeds": args.seeds,
        "problems_per_depth": {f"{k}/{d}": v for (k, d), v in sizes.items()},
        "minus_generator": {f"{k}/{a}/{d}": pooled(v) for (k, a, d), v in diffs.items()},
        "minus_warm_start": {f"{k}/{a}/{d}": pooled(v) for (k, a, d), v in over_warm.items()},
    }
    if not args.markdown:
        print(json.dumps(result))
        return
    names = {"default": "the learnt proposer's (self-play runs)", "generator": "the generator arm's"}
    for kind in ("default", "generator"):
        print(f"Problems from {names[kind]} runs of the other seeds, greedy, paired and pooled over the source seeds:\n")
        print("| difference | " + " | ".join(f"d{d}" for d in args.depths) + " |")
        print("|---|" + "---|" * len(args.depths))
        for table, label in ((diffs, "− generator arm"), (over_warm, "− warm start")):
            for arm in args.arms:
                if label.endswith("arm") and arm == "generator":
                    continue
                cells = []
                for d in args.depths:
                    v = table.get((kind, arm, d))
                    cells.append("-" if not v else "{:+.3f} ± {:.3f} ({:+.3f}..{:+.3f})".format(*(lambda p: (p[0], p[1], p[3], p[4]))(pooled(v))))
                print(f"| {arm} {label} | " + " | ".join(cells) + " |")
        print()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Tables of the self-play experiments (README.md here) from the run directories of run.sh.

    analyze.py OUT_DIR --seeds 1 2 3 --ablation-seeds 1 [--markdown]

Reads OUT_DIR/warmstart-eval.json, and for each run OUT_DIR/ARM-SEED/{metrics.jsonl,eval.json}
and, where run.sh wrote them, the run's valid problems OUT_DIR/ARM-SEED/valid.jsonl and each
benchmark problem's outcome (OUT_DIR/warmstart-items.jsonl, OUT_DIR/ARM-SEED/items.jsonl): with
those the changes carry their paired standard errors (the same problems before and after). An arm with
unfinished run (no eval.json) is left out. Prints one JSON object; with --markdown, the README's tables instead.
"""

import argparse
import json
import os
import re
import statistics

ARMS = [
    "default",
    "no-padding",
    "no-repetition",
    "no-penalties",
    "no-crowding",
    "no-target",
    "frontier-only",
    "anchor",
    "wide-rehearsal",
    "one-op",
    "one-op-no-penalties",
    "target-baseline",
    "solver-lr3x",
    "solver-lr10x",
    "solver-positive",
    "solver-dr-grpo",
    "dr-grpo-wide-rehearsal",
    "dr-grpo-lr3x",
]
CURVES = ["band_fraction", "padded_fraction", "surface_per_essential", "duplicate_fraction",
          "mean_essential_ops", "median_solve_rate", "valid_fraction", "rehearsal_solve_rate",
          "difficulty_level", "on_target_fraction", "mean_crowding", "generator_duplicate_fraction",
          "excess_duplicate_fraction"]
START = 25
# Problems this small are the ones padding can push into the band: the solver solves them nearly
# always unpadded.
EASY = 2
# Essential sizes whose surface size is followed through the run.
SIZES = (1, 2, 3)
# The largest literal the solver's warm start saw (and the benchmark has).
SOLVER_LITERALS = 20


def metrics(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def window_means(rows, key, windows):
    """Mean of `key` over `windows` equal spans of rounds (rows without the key are skipped)."""
    n = len(rows)
    out = []
    for w in range(windows):
        span = rows[w * n // windows:(w + 1) * n // windows]
        vals = [r[key] for r in span if r.get(key) is not None]
        out.append(round(statistics.fmean(vals), 4) if vals else None)
    return out


def ratio(r):
    s, e = r.get("mean_surface_ops"), r.get("mean_essential_ops")
    return s / e if s and e else None


def by_depth(ev, key="accuracy"):
    """`key` by depth; None when the evaluation has no such figure (`sampled` is newer)."""
    if any(key not in v for v in ev["by_depth"].values()):
        return None
    return {d: v[key] for d, v in ev["by_depth"].items()}


def items(path):
    """Per-problem outcomes of `selfplay eval --items`, keyed by problem; None without the file."""
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return {o["problem"]: o for o in map(json.loads, f)}


def paired_change(before, after):
    """By depth, for greedy and sampled accuracy: the mean change over the same problems and its
    standard error."""
    if before is None or after is None:
        return None
    measures = {"greedy": lambda o: float(o["greedy"]),
                "sampled": lambda o: o["correct_samples"] / o["samples"] if o["samples"] else None}
    out = {}
    for name, f in measures.items():
        diffs = {}
        for p, b in before.items():
            a = after.get(p)
            if a is not None and f(a) is not None and f(b) is not None:
                diffs.setdefault(str(b["depth"]), []).append(f(a) - f(b))
        out[name] = {d: {"change": round(statistics.fmean(v), 4),
                         "se": round(statistics.stdev(v) / len(v) ** 0.5, 4) if len(v) > 1 else None,
                         "n": len(v)}
                     for d, v in sorted(diffs.items(), key=lambda kv: int(kv[0]))}
    return out


PHASES = ["propose", "judge", "solve", "score", "store", "update", "curriculum", "eval"]


def bounds_of(rows):
    """The literal bounds the controller asked for in a run (none for a proposer taught none)."""
    return sorted({int(b) for r in rows for b in (r.get("difficulty_levels") or {})})


def run_summary(d, windows, warm_items, pool):
    rows = metrics(f"{d}/metrics.jsonl")
    bounds = bounds_of(rows)
    for r in rows:
        r["surface_per_essential"] = ratio(r)
        # Copies beyond what the generator, at the same targets and against the same archive, makes.
        g = r.get("generator_duplicate_fraction")
        r["excess_duplicate_fraction"] = None if g is None else r["duplicate_fraction"] - g
        # Each literal bound's level and median as curves of their own.
        for b in bounds:
            r[f"difficulty_level_{b}"] = (r.get("difficulty_levels") or {}).get(str(b))
            r[f"median_solve_rate_{b}"] = (r.get("median_solve_rates") or {}).get(str(b))
    curves = CURVES + [f"{k}_{b}" for b in bounds for k in ("median_solve_rate", "difficulty_level")]
    with open(f"{d}/eval.json") as f:
        ev = json.load(f)
    tenth = max(1, len(rows) // 10)
    first, last = rows[:tenth], rows[-tenth:]
    mean = lambda span, k: round(statistics.fmean(r[k] for r in span), 4)
    held = [(r["round"], r["held_out"]) for r in rows if r.get("held_out")]
    valid = valid_problems(f"{d}/valid.jsonl")
    return {
        "rounds": len(rows),
        "final_accuracy_by_depth": by_depth(ev),
        "final_pass_at_k_by_depth": by_depth(ev, "pass_at_k"),
        "final_sampled_by_depth": by_depth(ev, "sampled"),
        "paired_change": paired_change(warm_items, items(f"{d}/items.jsonl")),
        "seconds_per_round": round(statistics.fmean(r["timings"]["total"] for r in rows), 4),
        "phase_share": {
            p: round(sum(r["timings"][p] for r in rows) / sum(r["timings"]["total"] for r in rows), 4)
            if all(p in r["timings"] for r in rows) else None
            for p in PHASES
        },
        # Round time outside every timed phase (before `curriculum` was timed, the curriculum's
        # bookkeeping after the updates was here).
        "untimed_share": round(1 - sum(
            sum(r["timings"].get(p, 0.0) for p in PHASES) for r in rows) / sum(r["timings"]["total"] for r in rows), 4),
        "problems_per_s": round(statistics.fmean(r["problems_per_s"] for r in rows), 2),
        "held_out_first": held[0] if held else None,
        "held_out_last": held[-1] if held else None,
        "band_fraction_first_tenth": mean(first, "band_fraction"),
        "band_fraction_last_tenth": mean(last, "band_fraction"),
        "literal_bounds": bounds,
        "curves": {
            k: window_means(rows, k, windows)
            for k in curves
        },
        # The same over the first rounds only: where the proposer starts, before a tenth's mean
        # hides how fast it moves.
        "start": {k: window_means(rows[:START], k, 1)[0] for k in curves},
        "padded": padded_summary(valid),
        "surface_at_essential": surface_at_essential(valid, windows),
        # The same for the proposals asked for each literal bound.
        "surface_at_essential_by_bound": {
            str(b): surface_at_essential([r for r in valid if r.get("literal_target") == b], windows)
            for b in bounds
        } if valid else None,
        "copies_by_target": copies_by_target(valid, windows),
        "generator_by_target": generator_by_target(valid, windows, pool),
        "copies_last_tenth": copies_summary(valid, windows),
        "shape_spread": shape_spread(valid, windows),
        "skipped_depths": skipped_by_window(rows, windows),
        "padded_easy": padded_easy_curve(valid, windows),
        "padded_easy_target": padded_easy_curve(valid, windows, size="difficulty_target"),
        "padding_by_target": padding_by_size(valid, "difficulty_target"),
        "padding_by_essential_size": padding_by_size(valid),
        "padding_by_surface_size": padding_by_size(valid, "surface_ops"),
    }


def share(rows, keep):
    """The fraction of `rows` for which `keep` holds; None without rows."""
    return round(sum(bool(keep(r)) for r in rows) / len(rows), 4) if rows else None


def mean(rows, value):
    """The mean of `value` over `rows`; None without rows."""
    return round(statistics.fmean(value(r) for r in rows), 4) if rows else None


def by_window(rows, windows):
    """`rows` split into `windows` equal spans of rounds (1 to the last round)."""
    last = max(r["round"] for r in rows)
    return [[r for r in rows if w * last / windows < r["round"] <= (w + 1) * last / windows]
            for w in range(windows)]


def padded_summary(tried):
    """What padding bought: padded vs unpadded valid problems that the solver tried."""
    if tried is None:
        return None
    out = {}
    for name, keep in [("padded", lambda r: (r["padding"] or 0) > 0), ("unpadded", lambda r: not r["padding"])]:
        rs = [r for r in tried if keep(r)]
        out[name] = {
            "problems": len(rs),
            "copies": share(rs, lambda r: r["repetition"] != "fresh"),
            "off_target": share(rs, lambda r: r.get("difficulty_target") not in (None, r["depth"])),
            "in_band": share(rs, lambda r: 0.2 <= r["solve_rate"] <= 0.8),
            "mean_reward": mean(rs, lambda r: r["rewards"]["total"]),
        }
    return out


def copies_summary(tried, windows):
    """What copies and fresh problems were, over the last tenth of the rounds: how many, their
    mean p̂, the share in the band and their mean reward. Copies that pay sit in the band; copies
    that cost are accidents of a space the archive fills."""
    if not tried:
        return None
    last = by_window(tried, windows)[-1]
    out = {}
    for name, keep in [("copies", lambda r: r["repetition"] != "fresh"), ("fresh", lambda r: r["repetition"] == "fresh")]:
        rs = [r for r in last if keep(r)]
        out[name] = {
            "problems": len(rs),
            "mean_solve_rate": mean(rs, lambda r: r["solve_rate"]),
            "in_band": share(rs, lambda r: 0.2 <= r["solve_rate"] <= 0.8),
            "mean_reward": mean(rs, lambda r: r["rewards"]["total"]),
        }
    return out


def valid_problems(path):
    """The run's valid proposals that the solver tried (`selfplay archive export --valid`)."""
    if not os.path.exists(path):
        return None
    return [r for r in metrics(path) if r.get("solve_rate") is not None and r.get("rewards")]


def wide(r):
    """Whether a problem has a literal above the solver's warm-start literals (20)."""
    return any(int(d) > SOLVER_LITERALS for d in re.findall(r"[0-9]+", r["text"]))


def surface_at_essential(rows, windows, sizes=SIZES):
    """Surface size at equal essential size: by essential size and tenth of the rounds, the mean
    surface operators of valid proposals with that many essential operations, the padded share
    of them, the share that are canonical copies, the share with a literal above 20, how many there
    were, and the mean solve rate
    of the padded and the unpadded ones. Padding pays where it lowers a solve rate towards 0.5 (the
    sizes the solver masters) and costs where it pushes one below, so its growth is read size by
    size: an average over all sizes mixes the two as the controller moves the targets."""
    if not rows:
        return None
    spans = by_window(rows, windows)
    out = {}
    for e in sizes:
        curve = []
        for span in ([r for r in w if r.get("essential_ops") == e] for w in spans):
            curve.append({"surface": mean(span, lambda r: r["surface_ops"]),
                          "padded": share(span, lambda r: r["padding"] > 0),
                          "copies": share(span, lambda r: r["repetition"] != "fresh"),
                          "wide": share(span, wide),
                          "problems": len(span),
                          "solve_rate_padded": mean([r for r in span if r["padding"] > 0], lambda r: r["solve_rate"]),
                          "solve_rate_unpadded": mean([r for r in span if not r["padding"]], lambda r: r["solve_rate"])})
        out[str(e)] = curve
    return out


def shape(r):
    """A problem's shape, as the judge's crowding term reads it: its canonical form with each
    literal's digits as `#`."""
    return re.sub(r"[0-9]", "#", r["canonical"])


def copies_by_target(rows, windows, sizes=SIZES):
    """By depth asked for and tenth of the rounds: how many valid proposals were asked for it, and
    the share of them that are canonical copies."""
    if not rows:
        return None
    spans = by_window(rows, windows)
    return {str(d): [{"problems": len(span), "copies": share(span, lambda r: r["repetition"] != "fresh")}
                     for span in ([r for r in w if r.get("difficulty_target") == d] for w in spans)]
            for d in sizes}


def generator_pool(path):
    """Canonical hashes of generator problems by depth (run.sh's generator.jsonl: `selfplay gen
    --text` judged by `selfplay judge --json`); None without the file."""
    if not os.path.isfile(path):
        return None
    pool = {}
    for g in metrics(path):
        if g["valid"]:
            pool.setdefault(g["essential_ops"], []).append(g["hash"])
    return pool


def generator_by_target(rows, windows, pool, sizes=SIZES):
    """By depth asked for and tenth of the rounds: the share of the generator's problems of that
    depth that the archive held at the tenth's middle round — what a proposer writing its warm
    start's distribution would copy there — beside the proposals' own copies (copies_by_target)."""
    if not rows or not pool:
        return None
    last = max(r["round"] for r in rows)
    ordered = sorted(rows, key=lambda r: r["round"])
    archived, i, out = set(), 0, {str(d): [] for d in sizes}
    for w in range(windows):
        middle = (w + 0.5) * last / windows
        while i < len(ordered) and ordered[i]["round"] < middle:
            archived.add(ordered[i]["canonical_hash"])
            i += 1
        for d in sizes:
            out[str(d)].append(share(pool.get(d, []), lambda h: h in archived))
    return out


def shape_spread(rows, windows, essential=EASY, top=5):
    """How widely the proposer writes at `essential` operations: by tenth of the rounds, the
    valid proposals of that size, their distinct shapes, and the share of them in the span's `top`
    most frequent shapes."""
    if not rows:
        return None
    out = []
    for w in by_window(rows, windows):
        span = [shape(r) for r in w if r.get("essential_ops") == essential]
        counts = sorted((span.count(s) for s in set(span)), reverse=True)
        out.append({"problems": len(span), "shapes": len(counts),
                    "top_share": round(sum(counts[:top]) / len(span), 4) if span else None})
    return out


def skipped_by_window(rows, windows):
    """The depths the controller skipped as exhausted at the last round of each tenth."""
    n = len(rows)
    last = [rows[min(n, (w + 1) * n // windows) - 1] for w in range(windows)]
    # `exhausted_depths`: the key of the version measured before depths were skipped only below the level.
    return [r.get("skipped_depths") or r.get("exhausted_depths") or [] for r in last]


def padded_easy_curve(rows, windows, most=EASY, size="essential_ops"):
    """Padding at equal essential size: by tenth of the rounds, the padded fraction of valid
    proposals with at most `most` essential operations (and how many there were); with
    `size="difficulty_target"`, of those asked for at most `most`."""
    if not rows:
        return None
    out = []
    for w in by_window(rows, windows):
        span = [r for r in w if r.get(size) is not None and r[size] <= most]
        out.append({"padded": share(span, lambda r: r["padding"] > 0), "problems": len(span)})
    return out


def padding_by_size(rows, size="essential_ops"):
    """By `size` (essential or surface operations, or the depth asked for): how often padded and
    unpadded proposals were solved and paid. At equal essential size padding adds length; at equal
    surface size it takes the place of a real operation."""
    if not rows:
        return None
    out = {}
    for e in sorted({r[size] for r in rows if r.get(size) is not None}):
        for name, keep in [("unpadded", lambda r: not r["padding"]), ("padded", lambda r: r["padding"] > 0)]:
            rs = [r for r in rows if r[size] == e and keep(r)]
            if len(rs) >= 20:
                out.setdefault(str(e), {})[name] = {
                    "problems": len(rs),
                    "mean_solve_rate": round(statistics.fmean(r["solve_rate"] for r in rs), 4),
                    "in_band": round(sum(0.2 <= r["solve_rate"] <= 0.8 for r in rs) / len(rs), 4),
                    "mean_reward": round(statistics.fmean(r["rewards"]["total"] for r in rs), 4),
                }
    return out


def tenths_header(windows):
    """The header of a table with a column for each tenth (window) of the run."""
    return "| run | " + " | ".join(str(i + 1) for i in range(windows)) + " |\n|---|" + "---|" * windows


def learning_table(what, warm, runs, key, with_rounds, paired=None):
    """Accuracy by depth on the benchmark, warm start and each run's end (with the change, and its
    paired standard error where the runs have the `paired` measure)."""
    depths = sorted(warm, key=int)
    rounds = lambda n: f" {n} |" if with_rounds else ""
    print(f"Learning: {what} on the benchmark, warm start → end of self-play\n")
    print("| run |" + (" rounds |" if with_rounds else "") + " " + " | ".join(f"depth {d}" for d in depths) + " |")
    print("|---|" + ("---|" if with_rounds else "") + "---|" * len(depths))
    print("| warm start |" + rounds(0) + " " + " | ".join(f"{warm[d]:.3f}" for d in depths) + " |")
    for name, r in runs.items():
        acc = r[key]
        change = (r["paired_change"] or {}).get(paired, {})

        def cell(d):
            se = change.get(d, {}).get("se")
            return f"{acc[d]:.3f} ({acc[d] - warm[d]:+.3f}" + (f" ± {se:.3f})" if se is not None else ")")
        print(f"| {name} |" + rounds(r["rounds"]) + " " + " | ".join(cell(d) for d in depths) + " |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--seeds", nargs="+", default=["1", "2", "3"])
    ap.add_argument("--ablation-seeds", nargs="+", default=["1"])
    ap.add_argument("--windows", type=int, default=10)
    ap.add_argument("--markdown", action="store_true")
    a = ap.parse_args()
    with open(f"{a.out}/warmstart-eval.json") as f:
        warm_eval = json.load(f)
    warm, warm_pass = by_depth(warm_eval), by_depth(warm_eval, "pass_at_k")
    warm_sampled = by_depth(warm_eval, "sampled")
    warm_items = items(f"{a.out}/warmstart-items.jsonl")
    pool = generator_pool(f"{a.out}/generator.jsonl")
    runs = {}
    for arm in ARMS:
        for s in a.seeds if arm == "default" else a.ablation_seeds:
            if os.path.isfile(f"{a.out}/{arm}-{s}/eval.json"):
                runs[f"{arm}-{s}"] = run_summary(f"{a.out}/{arm}-{s}", a.windows, warm_items, pool)
    result = {"warm_start_accuracy_by_depth": warm, "warm_start_pass_at_k_by_depth": warm_pass,
              "warm_start_sampled_by_depth": warm_sampled, "runs": runs}
    if not a.markdown:
        print(json.dumps(result, indent=1))
        return

    if any(r["paired_change"] for r in runs.values()):
        print("Changes are given ± their standard error, paired over the same problems.\n")
    learning_table("greedy accuracy", warm, runs, "final_accuracy_by_depth", with_rounds=True, paired="greedy")
    print()
    if warm_sampled and all(r["final_sampled_by_depth"] for r in runs.values()):
        learning_table("sampled accuracy (the fraction of 8 samples at temperature 1 that are correct)",
                       warm_sampled, runs, "final_sampled_by_depth", with_rounds=False, paired="sampled")
        print()
    learning_table("pass@8 (temperature 1)", warm_pass, runs, "final_pass_at_k_by_depth", with_rounds=False)
    print("\nFrontier: fraction of valid proposals with p̂ in [0.2, 0.8], first vs last tenth of the rounds\n")
    print("| run | first tenth | last tenth |")
    print("|---|---|---|")
    for name, r in runs.items():
        print(f"| {name} | {r['band_fraction_first_tenth']:.3f} | {r['band_fraction_last_tenth']:.3f} |")
    for key, title in [("padded_fraction", "Padding: padded fraction of valid proposals"),
                       ("surface_per_essential", "Padding: surface / essential operators"),
                       ("duplicate_fraction", "Repetition: canonical-duplicate fraction of valid proposals"),
                       ("mean_essential_ops", "Essential operators per valid proposal"),
                       ("rehearsal_solve_rate", "Rehearsal: mean solve rate of the warm start's kind of problem"),
                       ("median_solve_rate", "Controller: median p̂ of the proposals (its target 0.5)"),
                       ("difficulty_level", "Controller: difficulty level (target depth)"),
                       ("on_target_fraction", "Controller: valid proposals on the target asked for (its depth, "
                                              "literals within its bound)"),
                       ("mean_crowding", "Repetition: mean crowding penalty of the fresh valid proposals"),
                       ("generator_duplicate_fraction", "Repetition: canonical-duplicate fraction of one generator "
                                                        "problem per target, against the same archive"),
                       ("excess_duplicate_fraction", "Repetition: the proposals' duplicate fraction less the "
                                                     "generator's")]:
        if all(r["start"][key] is None and not any(r["curves"][key]) for r in runs.values()):
            continue
        print(f"\n{title}: the first {START} rounds, then by tenth of the run\n")
        print(f"| run | 1–{START} | " + " | ".join(str(i + 1) for i in range(a.windows)) + " |")
        print("|---|---|" + "---|" * a.windows)
        for name, r in runs.items():
            # With literal bounds, the controller's curves for each bound follow the run's own.
            keys = [key] + ([f"{key}_{b}" for b in r["literal_bounds"]]
                            if key in ("median_solve_rate", "difficulty_level") else [])
            for k in keys:
                label = name if k == key else f"{name}, literals ≤ {k.rsplit('_', 1)[1]}"
                print(f"| {label} | " + " | ".join("–" if v is None else f"{v:.3f}"
                                                  for v in [r["start"][k]] + r["curves"][k]) + " |")
    print("\nPadding: what padded and unpadded valid proposals earned over the whole run\n")
    print("| run | padded | of them copies | off target | in band | mean reward "
          "| unpadded | of them copies | off target | in band | mean reward |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, r in runs.items():
        if r["padded"]:
            cells = [r["padded"][k][f] for k in ["padded", "unpadded"]
                     for f in ["problems", "copies", "off_target", "in_band", "mean_reward"]]
            print(f"| {name} | " + " | ".join("–" if c is None else f"{c}" if isinstance(c, int) else f"{c:.3f}" for c in cells) + " |")
    for e in SIZES:
        print(f"\nPadding at equal essential size: mean surface operators of valid proposals with {e} essential "
              f"operation{'s' if e > 1 else ''} (padded share), by tenth of the run\n")
        print(tenths_header(a.windows))
        for name, r in runs.items():
            curve = (r.get("surface_at_essential") or {}).get(str(e))
            if curve:
                print(f"| {name} | " + " | ".join("–" if c["surface"] is None else f"{c['surface']:.2f} ({c['padded']:.2f})"
                                                 for c in curve) + " |")
    for key, what in [("copies", "Repetition at equal essential size: canonical-copy share of valid proposals with "
                                 + " / ".join(str(e) for e in SIZES) + " essential operations"),
                      ("wide", "Literals at equal essential size: share of valid proposals with "
                               + " / ".join(str(e) for e in SIZES)
                               + f" essential operations that have a literal above {SOLVER_LITERALS}")]:
        print(f"\n{what}, by tenth of the run\n")
        print(tenths_header(a.windows))
        for name, r in runs.items():
            by_size = r.get("surface_at_essential")
            if by_size:
                cell = lambda w: " / ".join("–" if by_size[str(e)][w].get(key) is None
                                            else f"{by_size[str(e)][w][key]:.2f}" for e in SIZES)
                print(f"| {name} | " + " | ".join(cell(w) for w in range(a.windows)) + " |")
    print("\nRepetition by depth asked: canonical-copy share of valid proposals asked for "
          + " / ".join(str(e) for e in SIZES) + " operations (their number), by tenth of the run\n")
    print(tenths_header(a.windows))
    for name, r in runs.items():
        by_target = r.get("copies_by_target")
        if by_target:
            cell = lambda w: " / ".join("–" if by_target[str(d)][w]["copies"] is None
                                        else f"{by_target[str(d)][w]['copies']:.2f} ({by_target[str(d)][w]['problems']})"
                                        for d in SIZES)
            print(f"| {name} | " + " | ".join(cell(w) for w in range(a.windows)) + " |")
    if any(r.get("generator_by_target") for r in runs.values()):
        print("\nRepetition by depth asked, against the generator: canonical-copy share of valid proposals asked "
              "for " + " / ".join(str(e) for e in SIZES) + " operations, and (after the bar) of generator problems "
              "of that depth in the archive at the tenth's middle round, by tenth of the run\n")
        print(tenths_header(a.windows))
        for name, r in runs.items():
            by_target, gen = r.get("copies_by_target"), r.get("generator_by_target")
            if by_target and gen:
                cell = lambda w: " / ".join("–" if by_target[str(d)][w]["copies"] is None
                                            else f"{by_target[str(d)][w]['copies']:.2f}" for d in SIZES) + " \\| " + \
                    " / ".join(f"{gen[str(d)][w]:.2f}" for d in SIZES)
                print(f"| {name} | " + " | ".join(cell(w) for w in range(a.windows)) + " |")
    print("\nRepetition: copies and fresh valid proposals of the last tenth of the run: problems, mean p̂, "
          "in band, mean reward\n")
    print("| run | copies | fresh |")
    print("|---|---|---|")
    for name, r in runs.items():
        c = r.get("copies_last_tenth")
        if c:
            cell = lambda k: "–" if not c[k]["problems"] else (f"{c[k]['problems']}, {c[k]['mean_solve_rate']:.2f}, "
                                                               f"{c[k]['in_band']:.2f}, {c[k]['mean_reward']:+.3f}")
            print(f"| {name} | {cell('copies')} | {cell('fresh')} |")
    print(f"\nRepetition: valid proposals with {EASY} essential operations, their distinct shapes, and the share "
          "in the tenth's five most frequent shapes, by tenth of the run\n")
    print(tenths_header(a.windows))
    for name, r in runs.items():
        if r.get("shape_spread"):
            print(f"| {name} | " + " | ".join("–" if c["top_share"] is None else
                                             f"{c['problems']}, {c['shapes']}, {c['top_share']:.2f}"
                                             for c in r["shape_spread"]) + " |")
    if any(any(r["skipped_depths"]) for r in runs.values()):
        print("\nController: depths skipped as exhausted at the end of each tenth of the run\n")
        print(tenths_header(a.windows))
        for name, r in runs.items():
            print(f"| {name} | " + " | ".join(", ".join(map(str, e)) or "–" for e in r["skipped_depths"]) + " |")
    bounded = {b for r in runs.values() for b in (r.get("surface_at_essential_by_bound") or {})}
    for b in sorted(bounded, key=int):
        for key, what in [("surface", "mean surface operators (padded share)"), ("copies", "canonical-copy share")]:
            print(f"\nAsked for literals up to {b}: {what} of valid proposals with "
                  + " / ".join(str(e) for e in SIZES) + " essential operations, by tenth of the run\n")
            print(tenths_header(a.windows))
            for name, r in runs.items():
                by_size = (r.get("surface_at_essential_by_bound") or {}).get(b)
                if not by_size:
                    continue
                def cell(w):
                    cs = [by_size[str(e)][w] for e in SIZES]
                    if key == "surface":
                        return " / ".join("–" if c["surface"] is None else f"{c['surface']:.2f} ({c['padded']:.2f})"
                                          for c in cs)
                    return " / ".join("–" if c["copies"] is None else f"{c['copies']:.2f}" for c in cs)
                print(f"| {name} | " + " | ".join(cell(w) for w in range(a.windows)) + " |")
    for key, what in [("padded_easy", f"with at most {EASY} essential operations"),
                      ("padded_easy_target", f"asked for at most {EASY} operations")]:
        print(f"\nPadding at equal essential size: padded fraction of valid proposals {what} "
              "(their number), by tenth of the run\n")
        print(tenths_header(a.windows))
        for name, r in runs.items():
            if r.get(key):
                print(f"| {name} | " + " | ".join("–" if c["padded"] is None else f"{c['padded']:.2f} ({c['problems']})"
                                                 for c in r[key]) + " |")
    fmt = lambda c: "–" if c is None else (f"{c['problems']}, {c['mean_solve_rate']:.2f}, "
                                           f"{c['in_band']:.2f}, {c['mean_reward']:+.3f}")
    for key, size in [("padding_by_essential_size", "essential ops"), ("padding_by_surface_size", "surface ops"),
                      ("padding_by_target", "depth asked")]:
        print(f"\nPadding by {size} over the whole run: problems, mean p̂, in band, mean reward "
              "(unpadded / padded; sizes with fewer than 20 problems left out)\n")
        print(f"| run | {size} | unpadded | padded |")
        print("|---|---|---|---|")
        for name, r in runs.items():
            for e, c in (r.get(key) or {}).items():
                print(f"| {name} | {e} | {fmt(c.get('unpadded'))} | {fmt(c.get('padded'))} |")
    print("\nTime: seconds per round, share of round time by phase, proposals per second\n")
    print("| run | s/round | rounds/min | " + " | ".join(PHASES)
          + " | untimed | judge+store+curriculum+untimed | problems/s |")
    print("|---|---|---|" + "---|" * len(PHASES) + "---|---|---|")
    for name, r in runs.items():
        sh = r["phase_share"]
        small = sh["judge"] + sh["store"] + (sh["curriculum"] or 0.0) + r["untimed_share"]
        print(f"| {name} | {r['seconds_per_round']:.2f} | {60 / r['seconds_per_round']:.1f} | "
              + " | ".join("–" if sh[p] is None else f"{sh[p]:.1%}" for p in PHASES)
              + f" | {r['untimed_share']:.2%} | {small:.2%} | {r['problems_per_s']:.1f} |")


if __name__ == "__main__":
    main()

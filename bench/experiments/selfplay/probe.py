#!/usr/bin/env python3
"""The proposer beside the generator probe: each run's share of valid problems in the frontier band,
the proposer's and the generator's at the same targets (`round.generator_probe`), by tenth of the
run and by target depth.

    probe.py RUN_DIR [RUN_DIR ...] [--windows 10] [--markdown]

Reads RUN_DIR/metrics.jsonl. Only evaluation rounds carry the probe; the proposer's shares are taken
over the same rounds, so that both met the same solver. Prints one JSON object a run (or, with
--markdown, a table a run): per window, the proposer's and the generator's share and their ratio;
per target depth, the same over the whole run and over its last window.
"""

import argparse
import json
import statistics


def mean(xs):
    xs = [x for x in xs if x is not None]
    return round(statistics.fmean(xs), 4) if xs else None


def ratio(a, b):
    return round(a / b, 2) if a is not None and b else None


def summary(lines, windows):
    probed = [m for m in lines if m.get("generator_band_fraction") is not None]
    if not probed:
        return None
    last = max(m["round"] for m in lines)
    out = {"rounds": last, "probed_rounds": len(probed), "windows": [], "by_target": {}}
    for w in range(windows):
        lo, hi = last * w / windows, last * (w + 1) / windows
        span = [m for m in probed if lo < m["round"] <= hi]
        p = mean(m["band_fraction"] for m in span)
        g = mean(m["generator_band_fraction"] for m in span)
        out["windows"].append({"rounds": [int(lo) + 1, int(hi)], "probed": len(span),
                               "proposer": p, "generator": g, "ratio": ratio(p, g)})
    tail_from = last * (windows - 1) / windows
    depths = sorted({int(d) for m in probed for d in (m.get("generator_band_by_target") or {})})
    for d in depths:
        row = {}
        for name, span in (("run", probed), ("last_window", [m for m in probed if m["round"] > tail_from])):
            p = mean((m.get("band_by_target") or {}).get(str(d)) for m in span)
            g = mean((m.get("generator_band_by_target") or {}).get(str(d)) for m in span)
            row[name] = {"proposer": p, "generator": g, "ratio": ratio(p, g)}
        out["by_target"][str(d)] = row
    return out


def markdown(name, s):
    print(f"\n{name}: {s['rounds']} rounds, {s['probed_rounds']} probed\n")
    print("| rounds | proposer in band | generator in band | ratio |")
    print("|---|---|---|---|")
    for w in s["windows"]:
        print(f"| {w['rounds'][0]}–{w['rounds'][1]} | {w['proposer']} | {w['generator']} | {w['ratio']} |")
    print("\n| target depth | proposer / generator, whole run | last window |")
    print("|---|---|---|")
    for d, row in s["by_target"].items():
        r, t = row["run"], row["last_window"]
        print(f"| {d} | {r['proposer']} / {r['generator']} | {t['proposer']} / {t['generator']} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--windows", type=int, default=10)
    ap.add_argument("--markdown", action="store_true")
    a = ap.parse_args()
    for run in a.runs:
        with open(f"{run}/metrics.jsonl") as f:
            lines = [json.loads(line) for line in f if line.strip()]
        s = summary(lines, a.windows)
        if s is None:
            print(f"{run}: no generator probe in its metrics (round.generator_probe = 0, or no evaluation round yet)")
        elif a.markdown:
            markdown(run, s)
        else:
            print(json.dumps({"run": run, **s}))


if __name__ == "__main__":
    main()

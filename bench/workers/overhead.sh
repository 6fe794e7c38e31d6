#!/usr/bin/env bash
# What sampling on NATS workers costs: rounds per minute of the same run on the defaults, from the
# same warm start, in one process, on one worker and on two workers on this machine, alternating
# REPEATS times (a shared machine drifts: alternating puts every mode under the same drift).
# Prints each run and the ratios to the in-process rate; docs/SCALE.md keeps the figures.
#
#   WARM_START=runs/x/warmstart bench/workers/overhead.sh      # a warm start of the defaults
#   ROUNDS=40 REPEATS=3 WARM_START=... bench/workers/overhead.sh
#
# Without WARM_START, one is trained first (`selfplay pretrain`, about 8 minutes on 2 cores).
# Needs nats-server on the PATH (apt-get install nats-server).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-30}; REPEATS=${REPEATS:-2}; PORT=${PORT:-4333}
command -v nats-server >/dev/null || { echo "nats-server is not on the PATH" >&2; exit 1; }
cargo build --release -q
bin=$PWD/target/release/selfplay
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
warm=${WARM_START:-}
if [ -z "$warm" ]; then
  warm=$work/warm
  "$bin" pretrain --out "$warm" >/dev/null
fi
nats-server -js -a 127.0.0.1 -p "$PORT" -sd "$work/js" >/dev/null 2>&1 &
pids+=($!)
sleep 1
url=nats://127.0.0.1:$PORT
cores=$(nproc)

# `run MODE N`: one run of ROUNDS rounds; N workers (0: in process), each worker on cores/N
# threads so that N workers share the machine's cores as the one process does.
run() {
  local mode=$1 n=$2 dir=$work/run-$1-$RANDOM wpids=()
  local threads=$(( cores / (n > 0 ? n : 1) )); [ "$threads" -ge 1 ] || threads=1
  for _ in $(seq "$n"); do
    RAYON_NUM_THREADS=$threads "$bin" worker --nats "$url" 2>>"$work/workers.log" &
    wpids+=($!)
  done
  local flags=()
  [ "$n" -gt 0 ] && flags=(--nats "$url")
  "$bin" run --warm-start "$warm" --run-dir "$dir" --rounds "$ROUNDS" --json "${flags[@]}" 2>/dev/null \
    | python3 -c "import json,sys; s=json.load(sys.stdin); print(json.dumps({'mode': '$mode', 'rounds_per_minute': s['rounds_per_minute']}))"
  for p in "${wpids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  # The round's solve phase (sampling the attempts and checking them), from the metrics.
  python3 - "$dir/metrics.jsonl" "$mode" <<'PY' >>"$work/solve.jsonl"
import json, statistics, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
print(json.dumps({"mode": sys.argv[2], "solve_s": statistics.median(m["timings"]["solve"] for m in lines)}))
PY
  rm -rf "$dir"
}

results=()
for _ in $(seq "$REPEATS"); do
  results+=("$(run in-process 0)")
  results+=("$(run one-worker 1)")
  results+=("$(run two-workers 2)")
done
python3 - "$work/solve.jsonl" "$ROUNDS" "${results[@]}" <<'PY'
import json, statistics, sys
solve = [json.loads(l) for l in open(sys.argv[1])]
rounds, runs = sys.argv[2], [json.loads(r) for r in sys.argv[3:]]
flags = [l.split(":", 1)[1].split() for l in open("/proc/cpuinfo") if l.startswith("flags")][0]
print(f"{len(runs)} runs of {rounds} rounds; CPU flags: {' '.join(f for f in flags if f.startswith(('avx', 'fma')))}")
for r in runs:
    print(f"  {r['mode']:<12} {r['rounds_per_minute']:.2f} rounds/min")
modes = ["in-process", "one-worker", "two-workers"]
rate = {m: statistics.median(r["rounds_per_minute"] for r in runs if r["mode"] == m) for m in modes}
solve_s = {m: statistics.median(s["solve_s"] for s in solve if s["mode"] == m) for m in modes}
print("| mode | rounds/min (median) | vs in process | solve phase, s a round (median) |")
print("|---|---|---|---|")
for m in modes:
    print(f"| {m} | {rate[m]:.2f} | {rate[m] / rate['in-process']:.3f} | {solve_s[m]:.2f} |")
print(f"overhead of one worker: {100 * (1 - rate['one-worker'] / rate['in-process']):.1f}% of the rounds per minute")
PY

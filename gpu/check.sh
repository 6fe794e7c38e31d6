#!/usr/bin/env bash
# The GPU check: runs the binaries gpu/build.sh prebuilt, on a machine with an NVIDIA GPU and
# its driver but no Rust toolchain and no network, from the repository's root:
#
#   gpu/check.sh [BUNDLE] [OUT] [STAGES]
#
# BUNDLE: what gpu/build.sh gathered (default target/gpu-bundle); OUT: where logs and figures go
# (default $OUT, else /tmp/selfplay-gpu-check); STAGES: a comma-separated subset of
# smi,tests,bench,pretrain,run,eval,large,defaults (default all). Each stage runs under a time limit and
# its failure is reported without stopping the others; the script exits non-zero if any failed.
# The figures end in OUT/summary.txt, one line a stage, for bench/NOTES.md.
set -uo pipefail
cd "$(dirname "$0")/.."
bundle="$(cd "${1:-target/gpu-bundle}" && pwd)"
out="${2:-${OUT:-/tmp/selfplay-gpu-check}}"
stages=",${3:-smi,tests,bench,pretrain,run,eval,large,defaults},"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
work="$(mktemp -d)"
# gpu/build.sh compresses the binaries.
mkdir -p "$work/bin"
for f in "$bundle"/*.xz; do
  xz -dc "$f" >"$work/bin/$(basename "$f" .xz)"
  chmod +x "$work/bin/$(basename "$f" .xz)"
done
selfplay="$work/bin/selfplay"
summary="$out/summary.txt"
: >"$summary"
failed=0

say() { echo "== $*" | tee -a "$summary"; }

# stage NAME LIMIT_SECONDS COMMAND...: runs COMMAND with its output in OUT/NAME.log.
stage() {
  local name="$1" limit="$2"
  shift 2
  local start rc secs
  start=$(date +%s%N)
  timeout "$limit" "$@" >"$out/$name.log" 2>&1
  rc=$?
  secs=$(awk -v ns=$(($(date +%s%N) - start)) 'BEGIN { printf "%.1f", ns / 1e9 }')
  if [[ $rc -eq 0 ]]; then
    say "$name: ok in ${secs}s"
  else
    say "$name: FAILED (exit $rc) after ${secs}s; last lines:"
    tail -n 15 "$out/$name.log" | sed 's/^/   /' | tee -a "$summary"
    failed=1
  fi
  return $rc
}

wanted() { [[ "$stages" == *",$1,"* ]]; }

# The CUDA libraries the binary was linked against, wherever this machine keeps them (a CUDA
# installation, or the Python packages a deep-learning image carries).
libdirs=""
for lib in libcudart.so.13 libcublas.so.13 libcublasLt.so.13 libcurand.so.10 libnvrtc.so.13; do
  found="$(find /usr/local /opt /usr/lib /usr/lib64 -name "$lib" 2>/dev/null | head -1)"
  if [[ -n "$found" ]]; then
    [[ ":$libdirs:" == *":$(dirname "$found"):"* ]] || libdirs="$libdirs:$(dirname "$found")"
  else
    say "libraries: $lib not found on this machine"
  fi
done
export LD_LIBRARY_PATH="${libdirs#:}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
say "bundle $(tr '\n' ' ' <"$bundle/commit" 2>/dev/null); LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
if ldd "$selfplay" | grep -q "not found"; then
  say "libraries: still missing:"
  ldd "$selfplay" | grep "not found" | tee -a "$summary"
fi

if wanted smi; then
  stage smi 30 nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv
  cat "$out/smi.log" >>"$summary"
  # The CPU the `--device cpu` figures come from.
  lscpu | grep -E "^(Model name|CPU\(s\)|Thread|Core)" >>"$summary"
  grep -o -w -E "avx2|avx512f|avx512_bf16|amx_tile" /proc/cpuinfo | sort -u | tr '\n' ' ' | sed 's/^/CPU flags: /' >>"$summary"
  echo >>"$summary"
fi

if wanted tests; then
  SELFPLAY_CUDA_TESTS=1 stage tests 300 "$work/bin/policy-cuda-tests" --test-threads=1
  grep -E "^test |test result" "$out/tests.log" >>"$summary"
fi

if wanted bench; then
  # The default bench model (128 wide, 2 layers) and one worth a GPU (512 wide, 8 layers).
  for dev in cuda cpu; do
    stage "bench-train-$dev" 120 "$selfplay" bench train --device "$dev" --json --steps 10 &&
      cat "$out/bench-train-$dev.log" >>"$summary"
    stage "bench-sample-$dev" 120 "$selfplay" bench sample --device "$dev" --json --reps 2 &&
      cat "$out/bench-sample-$dev.log" >>"$summary"
  done
  for dev in cuda cpu; do
    stage "bench-train-large-$dev" 180 "$selfplay" bench train --device "$dev" --json --steps 5 \
      --d-model 512 --layers 8 --heads 8 --ctx 96 --batch 64 &&
      cat "$out/bench-train-large-$dev.log" >>"$summary"
  done
fi

# A short warm start on the GPU: the tiny players of the tests' configuration.
if wanted pretrain; then
  stage pretrain 180 "$selfplay" pretrain --config tests/tiny.toml --out "$work/warm" --device cuda --json &&
    tail -n 1 "$out/pretrain.log" | cut -c1-400 >>"$summary"
fi

# Two runs of the same seed, warm start included, must write the same metrics (timings aside).
if wanted run; then
  for r in a b; do
    stage "run-$r" 240 "$selfplay" run --config tests/tiny.toml --run-dir "$work/run-$r" --rounds 4 --device cuda
  done
  # Timings (and the clock) are the only figures that may differ.
  same_metrics() {
    python3 - "$1" "$2" <<'PY'
import json, sys
def rounds(path):
    out = []
    for line in open(path):
        m = json.loads(line)
        m.pop("timings", None)
        m.pop("problems_per_s", None)
        m.pop("attempt_tokens_per_s", None)
        m.pop("wall_time", None)
        out.append(m)
    return out
a, b = rounds(sys.argv[1]), rounds(sys.argv[2])
for x, y in zip(a, b):
    if x != y:
        print("round", x.get("round"), "differs:")
        print({k: (x.get(k), y.get(k)) for k in set(x) | set(y) if x.get(k) != y.get(k)})
sys.exit(0 if a == b else 1)
PY
  }
  if [[ -f "$work/run-a/metrics.jsonl" && -f "$work/run-b/metrics.jsonl" ]]; then
    if same_metrics "$work/run-a/metrics.jsonl" "$work/run-b/metrics.jsonl" >"$out/run-diff.log" 2>&1; then
      say "run: two seeded GPU runs wrote the same metrics ($(wc -l <"$work/run-a/metrics.jsonl") rounds)"
    else
      say "run: two seeded GPU runs DIFFER:"
      head -c 2000 "$out/run-diff.log" | tee -a "$summary"
      failed=1
    fi
    cp "$work/run-a/metrics.jsonl" "$out/run-metrics.jsonl"
  fi
  tail -n 3 "$out/run-a.log" >>"$summary" 2>/dev/null
fi

if wanted eval; then
  "$selfplay" gen --depth 2 --count 100 --max-literal 20 --seed 5 >"$work/bench.jsonl"
  latest="$(ls -d "$work"/run-a/checkpoints/round-* 2>/dev/null | sort | tail -n 1)"
  for dev in cuda cpu; do
    stage "eval-$dev" 120 "$selfplay" eval --checkpoint "${latest:-$work/run-a}" --benchmark "$work/bench.jsonl" \
      --device "$dev" --samples 4 --json && tail -n 1 "$out/eval-$dev.log" | cut -c1-400 >>"$summary"
  done
fi

# Rounds per minute: players worth a GPU (gpu/large.toml), and the default players, on the GPU.
# The warm starts are cut to 200 steps (this measures rounds, not what the players learn); the
# rate is the run's own closing line, which leaves the warm start out.
short() { sed -E 's/^steps = [0-9]+/steps = 200/' "$1"; }
if wanted large; then
  short gpu/large.toml >"$work/large.toml"
  stage large 360 "$selfplay" run --config "$work/large.toml" --run-dir "$work/large" \
    --minutes "${LARGE_MINUTES:-2}" --device cuda &&
    grep -E "rounds/min" "$out/large.log" | sed 's/^/large on cuda: /' >>"$summary"
fi
if wanted defaults; then
  printf '[warm_start.solver]\nsteps = 200\n[warm_start.proposer]\nsteps = 200\n' >"$work/defaults.toml"
  for dev in cuda cpu; do
    stage "defaults-$dev" 240 "$selfplay" run --config "$work/defaults.toml" --run-dir "$work/defaults-$dev" \
      --minutes "${DEFAULTS_MINUTES:-1}" --device "$dev" && grep -E "rounds/min" "$out/defaults-$dev.log" | sed "s/^/defaults on $dev: /" >>"$summary"
  done
fi

rm -rf "$work"
# Few files come back from a GPU machine: the logs travel as one archive beside the summary.
(
  cd "$out" || exit
  shopt -s nullglob
  logs=(./*.log ./*.jsonl)
  [[ ${#logs[@]} -eq 0 ]] || { tar czf logs.tar.gz "${logs[@]}" && rm -f "${logs[@]}"; }
)
exit $failed

#!/usr/bin/env bash
# Runs `selfplay bench` and the PyTorch reference on the same shapes, alternating on this machine
# REPEATS times (a shared machine drifts: alternating puts both under the same drift), and prints
# each round and the ratios of the medians. Needs python3 with torch; PYTHON picks the interpreter.
#
#   bench/reference/compare.sh            # d_model 128, 2 layers, 3 rounds
#   D_MODEL=256 LAYERS=4 REPEATS=5 bench/reference/compare.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python3}
D=${D_MODEL:-128}; L=${LAYERS:-2}; H=${HEADS:-4}; REPEATS=${REPEATS:-3}
if ! "$PYTHON" -c "import torch" 2>/dev/null; then
  echo "torch is not installed for $PYTHON: pip install torch, or set PYTHON" >&2
  exit 1
fi
cargo build --release -q
train_args=(--d-model "$D" --layers "$L" --heads "$H" --ctx 64 --batch 32 --vocab 32 --steps 20)
sample_args=(--d-model "$D" --layers "$L" --heads "$H" --batch 64 --prompt 16 --new 48)
rounds=()
for _ in $(seq "$REPEATS"); do
  ours_train=$(target/release/selfplay bench train "${train_args[@]}" --json)
  torch_train=$("$PYTHON" bench/reference/torch_gpt.py train "${train_args[@]}")
  ours_sample=$(target/release/selfplay bench sample "${sample_args[@]}" --json)
  torch_sample=$("$PYTHON" bench/reference/torch_gpt.py sample "${sample_args[@]}")
  rounds+=("[$ours_train,$torch_train,$ours_sample,$torch_sample]")
done
"$PYTHON" - "$D" "$L" "${rounds[@]}" <<'PY'
import json, statistics, sys
d, layers, rounds = sys.argv[1], sys.argv[2], [json.loads(r) for r in sys.argv[3:]]
print(f"d_model {d}, {layers} layers; torch {rounds[0][1]['torch']} with {rounds[0][1]['threads']} threads; {len(rounds)} rounds")
for i, (ot, tt, os_, ts) in enumerate(rounds, 1):
    print(f"  round {i}: train ms/step selfplay {ot['ms_per_step_median']:.1f}, torch {tt['ms_per_step_median']:.1f};"
          f" sample tokens/s selfplay {os_['tokens_per_s']:.0f}, torch {ts['tokens_per_s']:.0f}")
med = lambda i, key: statistics.median(r[i][key] for r in rounds)
ot, tt = med(0, "ms_per_step_median"), med(1, "ms_per_step_median")
os_, ts = med(2, "tokens_per_s"), med(3, "tokens_per_s")
on, tn = med(2, "tokens_per_s_no_cache"), med(3, "tokens_per_s_no_cache")
print(f"train  ms/step (median of rounds): selfplay {ot:.1f}, torch {tt:.1f}  -> selfplay/torch {ot / tt:.2f}x the time")
print(f"sample tokens/s (cache): selfplay {os_:.0f}, torch {ts:.0f}  -> selfplay/torch {os_ / ts:.2f}x the rate")
print(f"sample tokens/s (no cache): selfplay {on:.0f}, torch {tn:.0f}")
print(f"cache speedup: selfplay {os_ / on:.1f}x, torch {ts / tn:.1f}x")
PY

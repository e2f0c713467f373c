#!/usr/bin/env bash
# One prepared run for a GPU host (the device tool's machine, or any CUDA box):
# the CUDA-marked tests, then the engine benchmark on cuda at the seed
# dimensions and at a large size, each against the plain loop on the same GPU.
#
# On the device tool's machine FastAPI & co. are not installed: carry wheels in
# .whl/ (see README, "GPU checks") and this script installs them to /tmp/site.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site:$PWD
else
    export PYTHONPATH=$PWD
fi
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0))'
status=0
echo "== CUDA tests"
"$PY" -m pytest -q -m cuda -p no:cacheprovider tests/engine || status=1
echo "== engine benchmark, seed dimensions, cuda"
"$PY" bench/bench_engine.py --device cuda --iterations 500 || status=1
echo "== engine benchmark, N=4096 D_in=8192 H=4096 D_out=1024, cuda"
"$PY" bench/bench_engine.py --device cuda --lesson custom_module --iterations 50 \
    --N 4096 --D_in 8192 --H 4096 --D_out 1024 --repeat 3 || status=1
exit $status

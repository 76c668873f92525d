#!/usr/bin/env bash
# GPU check: bare-forward vs featlab throughput at 224 px and the feature
# differences of tf32 / bf16 from fp32, on the first CUDA device, in a few minutes.
#   bench/gpu_check.sh [--batch 64] [--batches 20]      (PYTHON=... to pick the interpreter)
# On a machine without a GPU it refuses, exit code 1.
set -euo pipefail
PYTHON=${PYTHON:-python}
here=$(cd "$(dirname "$0")" && pwd)
if ! "$PYTHON" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu_check: no CUDA GPU is visible to torch (torch.cuda.is_available() is False);" \
         "run this script on a machine with a GPU and a CUDA build of torch" >&2
    exit 1
fi
if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
fi
exec "$PYTHON" "$here/gpu_check.py" --device cuda "$@"

#!/usr/bin/env bash
# Runs the book on a GPU machine without internet that has its own torch (2.11 or newer), from the bundle
# made by scripts/gpu_bundle.sh, and packs the run's small result files and executed chapters (runs/PROFILE/book;
# no checkpoints) into OUT/book-run.tgz, also every 30 s while it runs, so that a stopped run keeps its part.
#   scripts/gpu_book.sh [BUNDLE] [OUT] [PROFILE]   # default .gpu, $OUT or gpu-out, full
# PYTHON: the Python to use (default python3); JOBS: concurrent trainings (default: the runner's choice).
# Then, on your machine: tar xzf book-run.tgz (the run into runs/), `clothparse book publish --profile PROFILE`
# copies its chapters into book/, and `clothparse book build` renders them.
set -uo pipefail
cd "$(dirname "$0")/.."
bundle=$(cd "${1:-.gpu}" && pwd)
out=$(mkdir -p "${2:-${OUT:-gpu-out}}" && cd "${2:-${OUT:-gpu-out}}" && pwd)
profile=${3:-full}
python=${PYTHON:-python3}  # a Python with torch and torchvision
export PYTHONPATH="$PWD:/tmp/clothparse-site" PYTHONUNBUFFERED=1
if ! $python -c 'import fastai, segmentation_models_pytorch, papermill, ipykernel' 2>/dev/null; then
    $python -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/clothparse-site \
        "$bundle"/whl/*.whl || exit 1
fi
$python -c 'import myst_nb' 2>/dev/null || PYTHONPATH="$PYTHONPATH:$bundle/shim"
export CLOTHPARSE_DATA_DIR="$bundle/data" CLOTHPARSE_RUNS_DIR="$bundle/runs" CLOTHPARSE_CACHE_DIR=/tmp/clothparse-cache
$python -c 'import torch; print("torch", torch.__version__, "CUDA:", torch.cuda.is_available())' || exit 1
pack() {
    local run="runs/$profile"
    tar czf "$out/.book-run.tgz" -C "$bundle" --exclude='*.pt' --exclude='*.npy' --exclude='persons.jsonl' \
        "$run" 2>/dev/null && mv "$out/.book-run.tgz" "$out/book-run.tgz"
}
( while sleep 30; do pack; done ) &
saver=$!
start=$(date +%s)
$python -m clothparse_lib.cli book run --profile "$profile" ${JOBS:+--jobs $JOBS} 2>&1 | tee "$out/book.log"
status=${PIPESTATUS[0]}
echo "book run: exit $status, $(( $(date +%s) - start )) s wall" | tee -a "$out/book.log"
kill $saver 2>/dev/null
pack
nvidia-smi --query-gpu=name,memory.total --format=csv >> "$out/book.log" 2>&1
exit $status

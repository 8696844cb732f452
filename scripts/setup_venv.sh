#!/usr/bin/env bash
# Creates (or reuses) the project's virtual environment and links it as .venv at the repo root.
# The venv itself lives in a cache folder keyed by the hash of requirements.txt, so CI and later
# sessions on the same machine reuse it, while a fresh machine builds it from the same command.
# A venv counts as complete only once its marker file is written: an interrupted build is redone.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
key=$( (cat requirements.txt; python3 --version) | sha256sum | cut -c1-16)
store=${CLOTHPARSE_VENV_STORE:-$HOME/.cache/clothparse/venvs}
venv="$store/venv-$key"
if [ ! -f "$venv/.complete" ]; then
    echo "setup: building the virtual environment in $venv (several GB, takes minutes)"
    rm -rf "$venv"
    mkdir -p "$store"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --upgrade pip setuptools wheel
    # torch first: exact pins taken from this machine's wheel store (see README).
    "$venv/bin/pip" install --quiet -r requirements.txt
    touch "$venv/.complete"
fi
if [ "$(readlink .venv 2>/dev/null || true)" != "$venv" ]; then
    rm -rf .venv
    ln -s "$venv" .venv
fi
# The package itself, editable, pointing at this checkout (cheap; redone for every checkout).
.venv/bin/pip install --quiet --no-deps --no-build-isolation -e "$root"
echo "setup: .venv -> $venv"

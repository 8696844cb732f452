#!/usr/bin/env bash
# Sets up .venv at the repository root in two layers:
#  - a base environment with the exact pins of requirements.txt (several GB), kept in a store
#    folder keyed by the hash of the pins, so CI and later checkouts on this machine reuse it while
#    a fresh machine builds it from this same command; it counts as complete only once its marker
#    is written, so an interrupted build is redone;
#  - .venv itself: a small per-checkout venv that sees the base's packages (a .pth file) and has
#    this checkout installed editable, so two checkouts never run each other's code; the base's console
#    scripts (jupyter and its subcommands, papermill, pytest, jupyter-book...) are copied into .venv/bin
#    with .venv's python in their first lines, so that an activated .venv runs the project's own, and the
#    python3 kernel of .venv/share/jupyter is .venv's python (JupyterLab, papermill); the linter (ruff, pinned
#    below: a few seconds, not worth a rebuild of the base) is installed in it. .venv is rebuilt
#    when the base or this script changes (its marker holds both hashes).
set -euo pipefail
cd "$(dirname "$0")/.."
RUFF=ruff==0.17.6  # the linter of pyproject.toml's [tool.ruff] (tests/test_layout.py runs it)
key=$( (cat requirements.txt; python3 --version) | sha256sum | cut -c1-16)
store=${CLOTHPARSE_VENV_STORE:-$HOME/.cache/clothparse/venvs}
base="$store/base-$key"
if [ ! -f "$base/.complete" ]; then
    echo "setup: building the base environment in $base (about 6.7 GB, takes minutes)"
    rm -rf "$base"
    mkdir -p "$store"
    python3 -m venv "$base"
    "$base/bin/pip" install --quiet --upgrade pip setuptools wheel
    "$base/bin/pip" install --quiet --no-compile -r requirements.txt  # modules compile on first import: only those used
    touch "$base/.complete"
fi
layout=$(sha256sum scripts/setup_venv.sh | cut -c1-16)
marker=".venv/.clothparse-base-$key-setup-$layout"
if [ ! -f "$marker" ]; then
    rm -rf .venv
    python3 -m venv .venv
    venv=$(cd .venv && pwd)
    site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    base_site=$("$base/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    echo "import site; site.addsitedir('$base_site')" > "$site/_clothparse_base.pth"
    .venv/bin/python -m pip install --quiet --no-deps --no-build-isolation -e .
    # the base's console scripts, run by .venv's python (pip's launchers name their python in the first lines)
    for script in "$base"/bin/*; do
        name=$(basename "$script")
        [ -f "$script" ] && [ ! -e ".venv/bin/$name" ] || continue
        head -c 2 "$script" | grep -q '#!' && head -n 3 "$script" | grep -q "$base/bin/python" || continue
        sed "1,3s#$base/bin/python[0-9.]*#$venv/bin/python#" "$script" > ".venv/bin/$name"
        chmod +x ".venv/bin/$name"
    done
    .venv/bin/python -m pip install --quiet "$RUFF"
    .venv/bin/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (ipykernel)" >/dev/null
    touch "$marker"
    echo "setup: .venv ready (packages from $base)"
fi

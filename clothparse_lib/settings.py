"""Where things live: every location is a setting (environment variable or argument), never a fixed path."""
from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_VAR = "CLOTHPARSE_DATA_DIR"  # folder holding ccp/ (and imaterialist/ for the paper profile)
CACHE_DIR_VAR = "CLOTHPARSE_CACHE_DIR"  # training-resolution caches (default ~/.cache/clothparse/data)
RUNS_DIR_VAR = "CLOTHPARSE_RUNS_DIR"  # run folders (default ./runs)


def data_dir(override: str | Path | None = None) -> Path:
    """The data folder: the argument, else $CLOTHPARSE_DATA_DIR; a clear error when neither is set."""
    value = override or os.environ.get(DATA_DIR_VAR)
    if not value:
        raise RuntimeError(f"no data folder: pass --data-dir or set {DATA_DIR_VAR} to the folder that holds ccp/ "
                           "(or imaterialist/); `clothparse download ccp --data-dir DIR` fetches CCP")
    return Path(value).expanduser()


def cache_dir(override: str | Path | None = None) -> Path:
    value = override or os.environ.get(CACHE_DIR_VAR) or Path.home() / ".cache" / "clothparse" / "data"
    return Path(value).expanduser()


def runs_dir(override: str | Path | None = None) -> Path:
    return Path(override or os.environ.get(RUNS_DIR_VAR) or "runs").expanduser()

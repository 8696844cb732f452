"""Where things live: every location is a setting (environment variable or argument), never a fixed path."""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DATA_DIR_VAR", "CACHE_DIR_VAR", "RUNS_DIR_VAR", "DEFAULT_DATA_DIR", "data_dir", "data_dir_is_default",
           "cache_dir", "runs_dir", "run_dir", "tag"]


DATA_DIR_VAR = "CLOTHPARSE_DATA_DIR"  # folder holding ccp/ (and imaterialist/ for the paper profile)
CACHE_DIR_VAR = "CLOTHPARSE_CACHE_DIR"  # training-resolution caches (default ~/.cache/clothparse/data)
RUNS_DIR_VAR = "CLOTHPARSE_RUNS_DIR"  # run folders (default ./runs)
DEFAULT_DATA_DIR = Path("~/.cache/clothparse/datasets")  # the data's default home, where CCP is fetched when missing


def data_dir(override: str | Path | None = None) -> Path:
    """The data folder: the argument, else $CLOTHPARSE_DATA_DIR, else the default home (``DEFAULT_DATA_DIR``); a file
    there is refused (nothing could be read from it, or fetched into it)."""
    folder = Path(override or os.environ.get(DATA_DIR_VAR) or DEFAULT_DATA_DIR).expanduser()
    if folder.exists() and not folder.is_dir():
        where = "--data-dir" if override else f"${DATA_DIR_VAR}" if os.environ.get(DATA_DIR_VAR) else "the default"
        raise ValueError(f"the data folder {folder} ({where}) is a file, not a folder: give the folder holding ccp/ "
                         "or imaterialist/")
    return folder


def data_dir_is_default(override: str | Path | None = None) -> bool:
    """True when neither the argument nor $CLOTHPARSE_DATA_DIR chose the data folder: data may be fetched into it."""
    return not (override or os.environ.get(DATA_DIR_VAR))


def cache_dir(override: str | Path | None = None) -> Path:
    value = override or os.environ.get(CACHE_DIR_VAR) or Path.home() / ".cache" / "clothparse" / "data"
    return Path(value).expanduser()


def runs_dir(override: str | Path | None = None) -> Path:
    """The folder of run folders: the argument, else $CLOTHPARSE_RUNS_DIR, else ./runs."""
    return Path(override or os.environ.get(RUNS_DIR_VAR) or "runs").expanduser()


def run_dir(profile: str, override: str | Path | None = None, runs: str | Path | None = None) -> Path:
    """A profile's run folder: ``override`` (``--run-dir``), else ``<runs>/<profile>`` (``--runs-dir``, else
    :func:`runs_dir`)."""
    return Path(override).expanduser() if override else runs_dir(runs) / profile


def tag(model: str, variant: str, seed: int) -> str:
    """The folder name of a model of a run (``<run>/models/<tag>``): the model, its data variant and a non-zero seed."""
    return f"{model}-{variant}" + (f"-seed{seed}" if seed else "")

"""What the runner records in a run folder: each executed chapter's stamp and each chapter's wall time.

A chapter's stamp hashes its code and markdown cells, its parameters, the library's source and the stamps of the
chapters run before it (a change upstream re-runs everything downstream)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .. import runfolder
from ..storage import write_atomic
from .chapters import ROOT
from .notebooks import code_hash

__all__ = ["library_hash", "chapter_stamp", "read_stamps", "write_stamps", "record_time", "chapter_times"]


def library_hash() -> str:
    h = hashlib.sha256()
    for path in sorted((ROOT / "clothparse_lib").rglob("*")):
        if path.suffix in (".py", ".json") and "__pycache__" not in path.parts:
            h.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def chapter_stamp(previous: str, notebook: Path, parameters: dict, library: str) -> str:
    """The stamp of ``notebook`` run after the chapter stamped ``previous`` ("" for the first)."""
    return hashlib.sha256(f"{previous}{code_hash(notebook)}{json.dumps(parameters, sort_keys=True)}{library}".encode()).hexdigest()


def read_stamps(run_dir: Path) -> dict:
    path = runfolder.book_stamps(run_dir)
    return json.loads(path.read_text()) if path.exists() else {}


def write_stamps(run_dir: Path, stamps: dict) -> None:
    write_atomic(runfolder.book_stamps(run_dir), json.dumps(stamps, indent=1))


def _read_times(path: Path):
    import pandas as pd

    return pd.read_csv(path) if path.exists() else pd.DataFrame(columns=["chapter", "seconds"])


def record_time(run_dir: Path, chapter: str, seconds: float, add: bool = False) -> None:
    """``chapter``'s wall time in the run's times: replaced (its latest execution) or ``add``-ed to the recorded."""
    import pandas as pd

    path = runfolder.book_times(run_dir)
    table = _read_times(path)
    if add:
        seconds += float(table.loc[table["chapter"] == chapter, "seconds"].sum())
    table = pd.concat([table[table["chapter"] != chapter], pd.DataFrame([{"chapter": chapter, "seconds": round(seconds, 1)}])])
    write_atomic(path, table.to_csv(index=False))


def chapter_times(run_dir: Path):
    """Wall time of each chapter's latest execution in this run folder."""
    return _read_times(runfolder.book_times(run_dir)).set_index("chapter")

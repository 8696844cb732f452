"""Publishing a run: its executed chapters copied into the book (``clothparse book publish``), only when every one
finished and carries the book's current cells, all together or none."""
from __future__ import annotations

from pathlib import Path

from .. import runfolder
from ..storage import write_files
from .chapters import CHAPTERS, ROOT
from .notebooks import read, source_cells, unfinished

__all__ = ["publish"]


def _cells(nb) -> list:
    return [(c.cell_type, c.source) for c in source_cells(nb)]


def publish(run_dir: Path, root: Path = ROOT, chapters=CHAPTERS) -> list[Path]:
    """Copy the chapters the run ``run_dir`` executed into ``<root>/book``; returns the written paths. Refused, with
    nothing written, when a chapter is missing, unfinished, or was executed from other cells than the book's."""
    executed, book = runfolder.book_dir(run_dir), Path(root) / "book"
    files, problems = {}, []
    for name in chapters:
        path = executed / f"{name}.ipynb"
        if not path.exists():
            problems.append(f"{name}: not executed")
            continue
        nb = read(path)
        why = unfinished(nb) or (_cells(nb) != _cells(read(book / f"{name}.ipynb"))
                                 and "executed from other cells than the book's (run the book again)")
        if why:
            problems.append(f"{name}: {why}")
        files[book / f"{name}.ipynb"] = path.read_bytes()
    if problems:
        raise RuntimeError(f"not published from {run_dir}: " + "; ".join(problems))
    write_files(files)
    return list(files)

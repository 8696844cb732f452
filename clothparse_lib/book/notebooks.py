"""A chapter's notebook: its own cells and their hash, whether an execution finished, tidied after one."""
from __future__ import annotations

import hashlib
from pathlib import Path

__all__ = ["read", "write", "source_cells", "code_hash", "unfinished", "tidy"]


def _nbformat():
    """nbformat, imported on first use: importing it takes about 1.5 s (its JSON-schema format checkers), which every
    chapter's kernel would pay through ``from clothparse_lib import book``."""
    import nbformat

    return nbformat


def read(path: Path):
    return _nbformat().read(path, as_version=4)


def write(nb, path: Path) -> None:
    """Write ``nb`` to ``path`` whole or not at all (:func:`storage.write_atomic`)."""
    from ..storage import write_atomic

    write_atomic(Path(path), _nbformat().writes(nb))


def source_cells(nb) -> list:
    """A chapter's own cells: without papermill's injected parameters."""
    return [c for c in nb.cells if "injected-parameters" not in c.metadata.get("tags", [])]


def code_hash(nb_path: Path) -> str:
    """Hash of a notebook's cell sources (not its outputs, not papermill's injected parameters)."""
    h = hashlib.sha256()
    for cell in source_cells(read(nb_path)):
        if cell.cell_type in ("code", "markdown"):
            h.update(cell.cell_type.encode() + b"\0" + cell.source.encode() + b"\0")
    return h.hexdigest()


def unfinished(nb) -> str | None:
    """Why an executed notebook is not a finished execution (a failure, or cells papermill left running or
    pending when killed); None when it is."""
    if nb.metadata.get("papermill", {}).get("exception"):
        return "its execution failed"
    if {c.metadata.get("papermill", {}).get("status") for c in nb.cells} & {"running", "pending"}:
        return "its execution did not finish (cells left running or pending)"
    return None


def tidy(notebook: Path) -> None:
    """Drop the machine's paths that papermill records in an executed notebook's metadata, and keep papermill's
    injected parameters out of the rendered page (``remove-cell``; they stay in the notebook)."""
    nb = read(notebook)
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            tags.append("remove-cell")
    meta = nb.metadata.get("papermill", {})
    for key in ("input_path", "output_path"):
        if meta.get(key):
            meta[key] = Path(meta[key]).name
    write(nb, notebook)


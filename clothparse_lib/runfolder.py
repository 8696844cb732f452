"""A run folder's layout: the path of every file a run folder holds, in one place, for every reader and writer.

A run folder (``<runs>/<profile>``, :func:`settings.run_dir`) holds its data split, the refinement's index, a folder
per trained model, and the book's records and the chapters as the run executed them."""
from __future__ import annotations

from pathlib import Path

__all__ = ["book_dir", "book_stamps", "book_times", "site_dir"]


def book_dir(run_dir: Path) -> Path:
    """The chapters as this run executed them (``clothparse book publish`` copies them into the book)."""
    return Path(run_dir) / "book"


def book_stamps(run_dir: Path) -> Path:
    """Each executed chapter's stamp (:mod:`book.records`)."""
    return Path(run_dir) / "book-stamps.json"


def book_times(run_dir: Path) -> Path:
    """Each chapter's wall time, and the concurrent trainings'."""
    return Path(run_dir) / "book-times.csv"


def site_dir(run_dir: Path) -> Path:
    """The run's chapters as a book to render, and rendered in its ``_build/html`` (``clothparse book build --profile``)."""
    return Path(run_dir) / "site"

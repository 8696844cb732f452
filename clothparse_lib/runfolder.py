"""A run folder's layout: the path of every file a run folder holds, in one place, for every reader and writer.

A run folder (``<runs>/<profile>``, :func:`settings.run_dir`) holds the data split (``split.csv``), the refinement's
index, review list and person detections, a folder per trained model (``models/<tag>``: :func:`tag`,
:func:`model_dir`) with its checkpoints, manifest, history and evaluations, and the book's records and the chapters
as the run executed them."""
from __future__ import annotations

from pathlib import Path

__all__ = ["RESULT_FILES", "tag", "models_dir", "model_dir", "best_checkpoint", "last_checkpoint", "manifest_file",
           "history_file", "result_file", "split_file", "refined_index_file", "review_file", "persons_file",
           "book_dir", "book_stamps", "book_times", "site_dir"]


def tag(model: str, variant: str, seed: int) -> str:
    """The folder name of a model of a run (``<run>/models/<tag>``): the model, its data variant and a non-zero seed."""
    return f"{model}-{variant}" + (f"-seed{seed}" if seed else "")


def models_dir(run_dir: Path) -> Path:
    return Path(run_dir) / "models"


def model_dir(run_dir: Path, name: str) -> Path:
    """The folder of the model ``name`` (a :func:`tag`, or the name ``clothparse train --tag`` gave it)."""
    return models_dir(run_dir) / name


def best_checkpoint(folder: Path) -> Path:
    """A model folder's checkpoint of its best validation epoch: what evaluation, prediction and export read."""
    return Path(folder) / "best.pt"


def last_checkpoint(folder: Path) -> Path:
    """A model folder's checkpoint of its last epoch, with the optimizer state: what a resumed training reads."""
    return Path(folder) / "last.pt"


def manifest_file(folder: Path) -> Path:
    """The readable copy of a model folder's manifest and checkpoint digests, written after the checkpoints."""
    return Path(folder) / "manifest.json"


def history_file(folder: Path) -> Path:
    return Path(folder) / "history.csv"


RESULT_FILES = {"evaluation": "json", "confusion": "npz", "per_image": "csv", "presence_prob": "npy"}


def result_file(folder: Path, kind: str, name: str = "test") -> Path:
    """An evaluation's file in a model folder: ``<kind>.<ext>`` for the test split (``name`` "test"), else
    ``<kind>-<name>.<ext>``; ``kind`` in :data:`RESULT_FILES`."""
    return Path(folder) / f"{kind}{'' if name == 'test' else '-' + name}.{RESULT_FILES[kind]}"


def split_file(run_dir: Path, name: str = "split") -> Path:
    """The run's split (``split``), or the refined data's (``split-refined``)."""
    return Path(run_dir) / f"{name}.csv"


def refined_index_file(run_dir: Path) -> Path:
    return Path(run_dir) / "refined_index.csv"


def review_file(run_dir: Path) -> Path:
    """The refinement's images left for a person's review, and their decisions."""
    return Path(run_dir) / "review.csv"


def persons_file(run_dir: Path) -> Path:
    """The person detections of the refinement (resumable)."""
    return Path(run_dir) / "persons.jsonl"


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

"""The book's runner: papermill executes the chapters in order into their run folder, skipping those whose inputs
are unchanged.

The chapters of ``<root>/book`` are executed into ``<run>/book`` (:func:`runfolder.book_dir`): the checkout stays
as it is, and ``clothparse book publish`` copies a finished run's chapters into the book (:mod:`.publish`). A chapter
is re-executed when its stamp changes (:mod:`.records`) or its executed notebook is missing. On failure the runner
stops with the chapter, the cell and the error; the partially executed notebook is left in the run's book, and
``start=CHAPTER`` (``--from``) resumes there. A chapter's stamp is removed on disk before it executes, so that a
killed run re-executes it. A full disk stops the run with one line (:class:`storage.DiskFull`). The runner holds the
run folder's lock while it runs (:func:`locks.folder_lock`): a second ``book run`` on the same folder stops, naming
it, or waits (``wait``).

The chapters find their run folder and data through ``$CLOTHPARSE_RUNS_DIR`` and
``$CLOTHPARSE_DATA_DIR``, which the runner sets for the kernel, so that only ``profile`` (and the
parameters the caller adds) is injected: the executed chapters show no path of the machine that ran them.
"""
from __future__ import annotations

import contextlib
import errno
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .. import runfolder, settings
from ..locks import folder_lock
from ..profiles import Profile, get_profile
from ..storage import DiskFull
from .chapters import CHAPTERS, REFERENCES_PROFILE, ROOT
from .notebooks import tidy
from .records import chapter_stamp, library_hash, read_stamps, record_time, write_stamps

__all__ = ["ChapterFailed", "ChapterRun", "run_book", "write_references"]


class ChapterFailed(RuntimeError):
    """``cell``: the failing cell's execution count (``In [n]`` in the partial notebook)."""

    def __init__(self, chapter: str, cell: int | None, source: str, error: str, notebook: Path):
        first = next((line for line in source.splitlines() if line.strip()), "")
        super().__init__(f"chapter '{chapter}' failed in cell In [{cell}] ({first.strip()[:80]}): {error}\n"
                         f"  partial notebook: {notebook}\n  resume with: clothparse book run ... --from {chapter}")
        self.chapter, self.cell, self.error, self.notebook = chapter, cell, error, notebook


@contextlib.contextmanager
def _environment(**values):
    old = {k: os.environ.get(k) for k in values}
    os.environ.update({k: str(v) for k, v in values.items() if v})
    try:
        yield
    finally:
        for k, v in old.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


@dataclass
class ChapterRun:
    chapter: str
    status: str  # "executed" or "skipped"
    seconds: float


def run_book(profile: Profile, root: Path = ROOT, runs_dir=None, data_dir=None, start: str | None = None,
             force: bool = False, parameters: dict | None = None, chapters=CHAPTERS,
             progress: bool = True, jobs: int | None = None, wait: bool = False, run_dir=None) -> list[ChapterRun]:
    """Execute ``<root>/book/<chapter>.ipynb`` with ``profile`` (papermill's ``profile`` parameter: its name) into the
    run folder's book, in order; returns what ran.

    ``runs_dir``: parent of the run folder ``<runs_dir>/<profile>`` (default ``$CLOTHPARSE_RUNS_DIR``, else
    ``<root>/runs``); ``data_dir``: default ``$CLOTHPARSE_DATA_DIR``; ``parameters``: more papermill parameters;
    ``jobs``: trainings run at once before the first chapter (:func:`parallel.train_concurrently`; default
    :func:`parallel.default_jobs`; 1: none, the chapters train what they need one at a time); ``wait``: for another
    process holding the run folder's lock, instead of raising :class:`locks.FolderLocked`; ``run_dir``: the run folder
    itself, instead of ``<runs_dir>/<profile>`` (the chapters' ``run_dir`` parameter).
    """
    if start is not None and start not in chapters:
        raise ValueError(f"unknown chapter {start!r}; chapters: {', '.join(chapters)}")
    source = Path(root).resolve() / "book"
    missing = [c for c in chapters if not (source / f"{c}.ipynb").exists()]
    if missing:
        raise FileNotFoundError(f"chapters not found in {source}: {', '.join(missing)}")
    runs = settings.runs_dir(runs_dir).resolve()
    params = {"profile": profile.name, **(parameters or {})}
    if run_dir:
        run_dir = Path(run_dir).expanduser().resolve()
        params = {"run_dir": str(run_dir), **params}
    else:
        run_dir = runs / profile.name
    with folder_lock(run_dir, wait), _environment(**{settings.RUNS_DIR_VAR: runs,
                                                     settings.DATA_DIR_VAR: Path(data_dir).resolve() if data_dir else None}):
        _train_first(profile, run_dir, jobs, progress)
        return _execute(source, run_dir, params, chapters, start, force, progress)


def _execute(source: Path, run_dir: Path, params: dict, chapters, start, force, progress) -> list[ChapterRun]:
    """Execute the chapters of the folder ``source`` into the run's book (the kernel's environment already set)."""
    out = runfolder.book_dir(run_dir)
    out.mkdir(parents=True, exist_ok=True)
    stamps, lib, stamp, started, results = read_stamps(run_dir), library_hash(), "", start is None, []
    for n, name in enumerate(chapters, 1):
        stamp = chapter_stamp(stamp, source / f"{name}.ipynb", params, lib)
        started = started or name == start
        done = stamps.get(name) == stamp and (out / f"{name}.ipynb").exists()
        if not force and (not started or done):
            results.append(ChapterRun(name, "skipped", 0.0))
            if progress:
                print(f"[book {n}/{len(chapters)}] {name}: {'unchanged' if started else 'before --from'}, skipped")
            continue
        if progress:
            print(f"[book {n}/{len(chapters)}] {name}: executing with profile {params['profile']}", flush=True)
        stamps.pop(name, None)
        write_stamps(run_dir, stamps)  # a run killed from here on leaves no stamp of this chapter
        seconds = _execute_chapter(name, source, out, params, progress)
        stamps[name] = stamp
        write_stamps(run_dir, stamps)
        record_time(run_dir, name, seconds)
        results.append(ChapterRun(name, "executed", seconds))
        if progress:
            print(f"[book {n}/{len(chapters)}] {name}: done in {seconds:.0f} s", flush=True)
    return results


def _execute_chapter(name: str, source: Path, out: Path, params: dict, progress: bool) -> float:
    """Execute one chapter (the kernel's working folder: the book's source folder); its wall time."""
    import papermill

    notebook = out / f"{name}.ipynb"
    t = time.perf_counter()
    try:
        papermill.execute_notebook(str(source / f"{name}.ipynb"), str(notebook), parameters=params, cwd=str(source),
                                   progress_bar=progress, kernel_name="python3")
    except papermill.PapermillExecutionError as e:
        tidy(notebook)
        if e.ename == "DiskFull" or f"[Errno {errno.ENOSPC}]" in e.evalue:
            raise DiskFull(f"chapter '{name}': {e.evalue}") from None
        raise ChapterFailed(name, e.exec_count, e.source, f"{e.ename}: {e.evalue}", notebook) from None
    tidy(notebook)
    return time.perf_counter() - t


def _train_first(profile: Profile, run_dir: Path, jobs: int | None, progress: bool) -> None:
    """With several jobs, every model the book needs is trained (and evaluated) before the chapters run."""
    from ..results.run import Run
    from .parallel import TrainingsFailed, default_jobs, train_concurrently

    jobs = jobs or default_jobs()
    if jobs > 1:
        t = last = time.perf_counter()

        def record(_tag):  # the wall time so far, added up as each training completes: over the sessions that
            nonlocal last  # trained the run's models (a killed and resumed run counts every part it completed)
            now = time.perf_counter()
            record_time(run_dir, "trainings (concurrent)", now - last, add=True)
            last = now

        try:
            trained = train_concurrently(Run(profile, run_dir, progress=progress), jobs, progress=progress,
                                         on_done=record)
        except TrainingsFailed as e:  # the chapters train the failed ones again, one at a time, and show any error
            print(f"[book] {e}\n[book] the chapters will train these one at a time", file=sys.stderr, flush=True)
            trained = e.done
        if progress:
            print(f"[book] {len(trained)} models trained, {jobs} at a time, in {time.perf_counter() - t:.0f} s", flush=True)


def write_references(dest: Path = ROOT / "tests" / "notebooks", runs_dir=None, data_dir=None,
                     chapters=CHAPTERS) -> list[Path]:
    """Execute every chapter with the published profile's dry run (CCP, ``data_dir``: default
    ``$CLOTHPARSE_DATA_DIR``) in a scratch run folder and store the executed notebooks in ``dest``: nbval's
    references, whose cells are the book's and whose outputs are the dry run's (the test suite executes them in its
    own dry run)."""
    import shutil
    import tempfile

    profile = get_profile(REFERENCES_PROFILE)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="clothparse-references-") as tmp:
        runs = Path(runs_dir or tmp)
        run_book(profile, runs_dir=runs, data_dir=data_dir, force=True, chapters=chapters)
        for name in chapters:
            shutil.copyfile(runfolder.book_dir(runs / profile.name) / f"{name}.ipynb", dest / f"{name}.ipynb")
    return [dest / f"{name}.ipynb" for name in chapters]

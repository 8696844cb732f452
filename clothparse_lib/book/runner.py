"""The book's runner: papermill executes the chapters in order, skipping those whose inputs are unchanged.

A chapter is re-executed when its stamp changes: the hash of its code and markdown cells, its
parameters, the library's source, and the stamps of the chapters run before it (a change upstream
re-runs everything downstream). Stamps live in ``<run>/book-stamps.json``, wall times in
``<run>/book-times.csv``. On failure the runner stops with the chapter, the cell and the error; the
partially executed notebook is left in place, and ``start=CHAPTER`` (``--from``) resumes there. A
chapter's stamp is removed on disk before it executes, so that a killed run re-executes it. A full disk stops the
run with one line (:class:`storage.DiskFull`). The runner holds the run folder's lock while it runs
(:func:`locks.folder_lock`): a second ``book run`` on the same folder stops, naming it, or waits (``wait``).
Rendering is jupyter-book's (execution off in ``_config.yml``): :func:`build_html`, which refuses a
chapter whose execution failed or did not finish.

The chapters find their run folder and data through ``$CLOTHPARSE_RUNS_DIR`` and
``$CLOTHPARSE_DATA_DIR``, which the runner sets for the kernel, so that only ``profile`` (and the
parameters the caller adds) is injected: the committed chapters show no path of the machine that ran them.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .. import settings
from ..locks import folder_lock
from ..storage import DiskFull

__all__ = ["ROOT", "PUBLISHED_PROFILE", "RUNS_LAST", "toc_pages", "toc_chapters", "CHAPTERS", "ChapterFailed", "code_hash",
           "library_hash", "ChapterRun", "run_book", "unfinished", "tidy", "chapter_times", "source_cells",
           "copy_chapters", "write_references", "build_html"]


ROOT = Path(__file__).resolve().parents[2]


# The profile whose run the committed chapters carry (the README says how to regenerate it): the CPU profile with
# seeds enough to test the claims; the full profile's GPU run replaces it once a GPU has run it (scripts/gpu_book.sh).
PUBLISHED_PROFILE = "cpu"


RUNS_LAST = "intro"  # the one exception to _toc.yml's order: its summary gathers every other chapter's results


def _nbformat():
    """nbformat, imported on first use: importing it takes about 1.5 s (its JSON-schema format checkers), which every
    chapter's kernel would pay through ``from clothparse_lib import book``."""
    import nbformat

    return nbformat


def _toc_files(root: Path) -> list[str]:
    import yaml

    toc = yaml.safe_load((Path(root) / "_toc.yml").read_text())
    return [toc["root"], *(entry["file"] for entry in toc.get("chapters", []))]


def toc_pages(root: Path = ROOT) -> tuple[str, ...]:
    """The pages of ``_toc.yml`` that are Markdown (``<file>.md``, e.g. the References page): rendered, never executed."""
    return tuple(Path(f).name for f in _toc_files(root) if (Path(root) / f"{f}.md").exists())


def toc_chapters(root: Path = ROOT) -> tuple[str, ...]:
    """The chapters in execution order: ``_toc.yml``'s notebooks (the only chapter list; its Markdown pages,
    :func:`toc_pages`, are not chapters), with :data:`RUNS_LAST` moved last."""
    pages = toc_pages(root)
    names = [n for n in (Path(f).name for f in _toc_files(root)) if n not in pages]
    return tuple(n for n in names if n != RUNS_LAST) + ((RUNS_LAST,) if RUNS_LAST in names else ())


CHAPTERS = toc_chapters()


class ChapterFailed(RuntimeError):
    """``cell``: the failing cell's execution count (``In [n]`` in the partial notebook)."""

    def __init__(self, chapter: str, cell: int | None, source: str, error: str, notebook: Path):
        first = next((line for line in source.splitlines() if line.strip()), "")
        super().__init__(f"chapter '{chapter}' failed in cell In [{cell}] ({first.strip()[:80]}): {error}\n"
                         f"  partial notebook: {notebook}\n  resume with: clothparse book run ... --from {chapter}")
        self.chapter, self.cell, self.error, self.notebook = chapter, cell, error, notebook


def code_hash(nb_path: Path) -> str:
    """Hash of a notebook's cell sources (not its outputs, not papermill's injected parameters)."""
    h = hashlib.sha256()
    for cell in source_cells(_nbformat().read(nb_path, as_version=4)):
        if cell.cell_type in ("code", "markdown"):
            h.update(cell.cell_type.encode() + b"\0" + cell.source.encode() + b"\0")
    return h.hexdigest()


def library_hash() -> str:
    h = hashlib.sha256()
    for path in sorted((ROOT / "clothparse_lib").rglob("*")):
        if path.suffix in (".py", ".json") and "__pycache__" not in path.parts:
            h.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


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


def run_book(profile: str, root: Path = ROOT, runs_dir=None, data_dir=None, start: str | None = None,
             force: bool = False, parameters: dict | None = None, chapters=CHAPTERS,
             progress: bool = True, jobs: int | None = None, wait: bool = False, run_dir=None) -> list[ChapterRun]:
    """Execute ``<root>/book/<chapter>.ipynb`` in place with papermill, in order; returns what ran.

    ``runs_dir``: parent of the run folder ``<runs_dir>/<profile>`` (default ``$CLOTHPARSE_RUNS_DIR``, else
    ``<root>/runs``); ``data_dir``: default ``$CLOTHPARSE_DATA_DIR``; ``parameters``: more papermill parameters;
    ``jobs``: trainings run at once before the first chapter (:func:`parallel.train_concurrently`; default
    :func:`parallel.default_jobs`; 1: none, the chapters train what they need one at a time); ``wait``: for another
    process holding the run folder's lock, instead of raising :class:`locks.FolderLocked`; ``run_dir``: the run folder
    itself, instead of ``<runs_dir>/<profile>`` (the chapters' ``run_dir`` parameter).
    """
    from ..profiles import get_profile

    get_profile(profile)  # a clear error for an unknown profile, before anything runs
    if start is not None and start not in chapters:
        raise ValueError(f"unknown chapter {start!r}; chapters: {', '.join(chapters)}")
    book = Path(root).resolve() / "book"
    missing = [c for c in chapters if not (book / f"{c}.ipynb").exists()]
    if missing:
        raise FileNotFoundError(f"chapters not found in {book}: {', '.join(missing)}")
    runs = settings.runs_dir(runs_dir).resolve()
    if run_dir:
        run_dir = Path(run_dir).expanduser().resolve()
        parameters = {"run_dir": str(run_dir), **(parameters or {})}
    else:
        run_dir = runs / profile
    with folder_lock(run_dir, wait):
        return _run(profile, book, run_dir, runs, data_dir, start, force, parameters, chapters, progress, jobs)


def _run(profile, book, run_dir, runs, data_dir, start, force, parameters, chapters, progress, jobs) -> list[ChapterRun]:
    import papermill

    stamps_file, times_file = run_dir / "book-stamps.json", run_dir / "book-times.csv"
    stamps = json.loads(stamps_file.read_text()) if stamps_file.exists() else {}
    params = {"profile": profile, **(parameters or {})}
    data = Path(data_dir).resolve() if data_dir else None
    lib, chain, started, results = library_hash(), "", start is None, []
    with _environment(**{settings.RUNS_DIR_VAR: runs, settings.DATA_DIR_VAR: data}):
        _train_first(profile, run_dir, jobs, progress)
        for n, name in enumerate(chapters, 1):
            notebook = book / f"{name}.ipynb"
            chain = hashlib.sha256(f"{chain}{code_hash(notebook)}{json.dumps(params, sort_keys=True)}{lib}".encode()).hexdigest()
            started = started or name == start
            if not force and (not started or stamps.get(name) == chain):
                results.append(ChapterRun(name, "skipped", 0.0))
                if progress:
                    print(f"[book {n}/{len(chapters)}] {name}: {'unchanged' if started else 'before --from'}, skipped")
                continue
            if progress:
                print(f"[book {n}/{len(chapters)}] {name}: executing with profile {profile}", flush=True)
            t = time.perf_counter()
            stamps.pop(name, None)
            _write_stamps(stamps_file, stamps)  # a run killed from here on leaves no stamp of this chapter
            try:
                papermill.execute_notebook(str(notebook), str(notebook), parameters=params, cwd=str(book),
                                           progress_bar=progress, kernel_name="python3")
            except papermill.PapermillExecutionError as e:
                tidy(notebook)
                if e.ename == "DiskFull" or f"[Errno {errno.ENOSPC}]" in e.evalue:
                    raise DiskFull(f"chapter '{name}': {e.evalue}") from None
                raise ChapterFailed(name, e.exec_count, e.source, f"{e.ename}: {e.evalue}", notebook) from None
            seconds = time.perf_counter() - t
            tidy(notebook)
            stamps[name] = chain
            _write_stamps(stamps_file, stamps)
            _record_time(times_file, name, seconds)
            results.append(ChapterRun(name, "executed", seconds))
            if progress:
                print(f"[book {n}/{len(chapters)}] {name}: done in {seconds:.0f} s", flush=True)
    return results


def _train_first(profile: str, run_dir: Path, jobs: int | None, progress: bool) -> None:
    """With several jobs, every model the book needs is trained (and evaluated) before the chapters run."""
    from ..results.run import Run
    from .parallel import TrainingsFailed, default_jobs, train_concurrently

    jobs = jobs or default_jobs()
    if jobs > 1:
        t = last = time.perf_counter()

        def record(_tag):  # the wall time so far, added up as each training completes: over the sessions that
            nonlocal last  # trained the run's models (a killed and resumed run counts every part it completed)
            now = time.perf_counter()
            _record_time(run_dir / "book-times.csv", "trainings (concurrent)", now - last, add=True)
            last = now

        try:
            trained = train_concurrently(Run.open(profile, run_dir, progress=progress), jobs, progress=progress,
                                         on_done=record)
        except TrainingsFailed as e:  # the chapters train the failed ones again, one at a time, and show any error
            print(f"[book] {e}\n[book] the chapters will train these one at a time", file=sys.stderr, flush=True)
            trained = e.done
        if progress:
            print(f"[book] {len(trained)} models trained, {jobs} at a time, in {time.perf_counter() - t:.0f} s", flush=True)


def _write_stamps(path: Path, stamps: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(stamps, indent=1))
    os.replace(tmp, path)


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
    nb = _nbformat().read(notebook, as_version=4)
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            tags.append("remove-cell")
    meta = nb.metadata.get("papermill", {})
    for key in ("input_path", "output_path"):
        if meta.get(key):
            meta[key] = Path(meta[key]).name
    _nbformat().write(nb, notebook)


def _record_time(path: Path, chapter: str, seconds: float, add: bool = False) -> None:
    """``chapter``'s wall time in ``book-times.csv``: replaced (its latest execution) or ``add``-ed to the recorded."""
    import pandas as pd

    table = pd.read_csv(path) if path.exists() else pd.DataFrame(columns=["chapter", "seconds"])
    if add:
        seconds += float(table.loc[table["chapter"] == chapter, "seconds"].sum())
    table = pd.concat([table[table["chapter"] != chapter], pd.DataFrame([{"chapter": chapter, "seconds": round(seconds, 1)}])])
    table.to_csv(path, index=False)


def chapter_times(run_dir: Path):
    """Wall time of each chapter's latest execution in this run folder (``book-times.csv``)."""
    import pandas as pd

    path = Path(run_dir) / "book-times.csv"
    table = pd.read_csv(path) if path.exists() else pd.DataFrame(columns=["chapter", "seconds"])
    return table.set_index("chapter")


def source_cells(nb) -> list:
    """A chapter's own cells: without papermill's injected parameters."""
    return [c for c in nb.cells if "injected-parameters" not in c.metadata.get("tags", [])]


def copy_chapters(root: Path, chapters=CHAPTERS) -> Path:
    """The book's chapters, cells only (no outputs, no injected parameters), in ``<root>/book``: a scratch book."""
    (Path(root) / "book").mkdir(parents=True, exist_ok=True)
    for name in chapters:
        nb = _nbformat().read(ROOT / "book" / f"{name}.ipynb", as_version=4)
        nb.cells = source_cells(nb)
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        _nbformat().write(nb, Path(root) / "book" / f"{name}.ipynb")
    return Path(root) / "book"


def write_references(dest: Path = ROOT / "tests" / "notebooks", runs_dir=None, chapters=CHAPTERS) -> list[Path]:
    """Execute every chapter with the smoke profile in a scratch copy of the book and store the executed
    notebooks in ``dest``: nbval's references, whose cells are the book's and whose outputs are smoke's."""
    import shutil
    import tempfile

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="clothparse-references-") as tmp:
        root = Path(tmp)
        copy_chapters(root, chapters)
        run_book("smoke", root=root, runs_dir=runs_dir or root / "runs", force=True, chapters=chapters)
        for name in chapters:
            shutil.copyfile(root / "book" / f"{name}.ipynb", dest / f"{name}.ipynb")
    return [dest / f"{name}.ipynb" for name in chapters]


def build_html(root: Path = ROOT, warnings_are_errors: bool = True, quiet: bool = False,
               repository: str | None = None, branch: str | None = None) -> Path:
    """Render the executed chapters with jupyter-book 1.x, then add the "Try it" page's files
    (:func:`site.add_try_it`); returns ``<root>/_build/html``. A chapter whose execution failed or did not finish is
    refused.

    ``repository``: the book's GitHub address (default: :func:`repository.repository_url`, from the setting or the
    checkout's ``origin``; ``"none"``: no buttons); with one, jupyter-book gets a copy of ``_config.yml`` that adds it
    and the repository, issue and launch buttons (:func:`repository.book_config`); ``branch``: the branch they link to."""
    import tempfile

    import yaml

    from .repository import book_config, repository_branch, repository_url
    from .site import add_try_it

    for notebook in sorted((Path(root) / "book").glob("*.ipynb")):
        why = unfinished(_nbformat().read(notebook, as_version=4))
        if why:
            raise RuntimeError(f"chapter '{notebook.stem}' is not rendered: {why}; "
                               f"execute it again (clothparse book run ... --from {notebook.stem})")
    url = repository_url(root, repository)
    cmd = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()", "build", str(root)]
    if warnings_are_errors:
        cmd += ["-W", "-n", "--keep-going"]
    if quiet:
        cmd += ["-q"]
    with tempfile.TemporaryDirectory(prefix="clothparse-book-config-") as tmp:
        if url:
            config = Path(tmp) / "_config.yml"
            config.write_text(yaml.safe_dump(book_config(root, url, repository_branch(root, branch)), sort_keys=False))
            cmd += ["--config", str(config)]
        subprocess.run(cmd, check=True, cwd=root)
    add_try_it(Path(root) / "_build" / "html", root, ROOT)
    return Path(root) / "_build" / "html"

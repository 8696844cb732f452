"""Rendering the book with jupyter-book 1.x (execution off in ``_config.yml``): the committed chapters, or those a
run executed (staged with the book's configuration, bibliography and pages in :func:`runfolder.site_dir`). A chapter
whose execution failed or did not finish is refused."""
from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .. import runfolder
from .chapters import CHAPTERS, ROOT, toc_pages
from .notebooks import read, unfinished
from .site import add_try_it

__all__ = ["stage_run", "build_html"]


def stage_run(run_dir: Path, root: Path = ROOT, chapters=CHAPTERS) -> Path:
    """The run's executed chapters with ``root``'s configuration, bibliography and Markdown pages: a book to render."""
    executed = runfolder.book_dir(run_dir)
    missing = [c for c in chapters if not (executed / f"{c}.ipynb").exists()]
    if missing:
        raise FileNotFoundError(f"chapters not executed in {run_dir}: {', '.join(missing)} "
                                f"(clothparse book run --profile {Path(run_dir).name})")
    site = runfolder.site_dir(run_dir)
    (site / "book").mkdir(parents=True, exist_ok=True)
    for f in ("_config.yml", "_toc.yml", "references.bib", *(f"book/{p}.md" for p in toc_pages(root))):
        shutil.copyfile(Path(root) / f, site / f)
    for chapter in chapters:
        shutil.copyfile(executed / f"{chapter}.ipynb", site / "book" / f"{chapter}.ipynb")
    return site


def build_html(root: Path = ROOT, run_dir: Path | None = None, warnings_are_errors: bool = True, quiet: bool = False,
               repository: str | None = None, branch: str | None = None) -> Path:
    """Render the executed chapters of ``<root>/book``, or with ``run_dir`` those of that run (:func:`stage_run`);
    returns the HTML's folder (``<book>/_build/html``), with the "Try it" page's files (:func:`site.add_try_it`).

    ``repository``: the book's GitHub address (default: :func:`repository.repository_url`, from the setting or the
    checkout's ``origin``; ``"none"``: no buttons); with one, jupyter-book gets a copy of ``_config.yml`` that adds it
    and the repository, issue and launch buttons (:func:`repository.book_config`); ``branch``: the branch they link to."""
    import yaml

    from .repository import book_config, repository_branch, repository_url

    for notebook in sorted((runfolder.book_dir(run_dir) if run_dir else Path(root) / "book").glob("*.ipynb")):
        why = unfinished(read(notebook))
        if why:
            raise RuntimeError(f"chapter '{notebook.stem}' is not rendered: {why}; "
                               f"execute it again (clothparse book run ... --from {notebook.stem})")
    project = stage_run(run_dir, root) if run_dir else Path(root)
    url = repository_url(root, repository)
    cmd = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()", "build", str(project)]
    if warnings_are_errors:
        cmd += ["-W", "-n", "--keep-going"]
    if quiet:
        cmd += ["-q"]
    with tempfile.TemporaryDirectory(prefix="clothparse-book-config-") as tmp:
        if url:
            config = Path(tmp) / "_config.yml"
            config.write_text(yaml.safe_dump(book_config(root, url, repository_branch(root, branch)), sort_keys=False))
            cmd += ["--config", str(config)]
        subprocess.run(cmd, check=True, cwd=project)
    html = project / "_build" / "html"
    add_try_it(html, root, ROOT)  # the "Try it" page's runtime, model and example
    return html

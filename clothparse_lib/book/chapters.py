"""The book's chapters: which, in which order (``_toc.yml``), and which profile's run the committed ones carry."""
from __future__ import annotations

from pathlib import Path

from ..profiles import DRY_RUN_SUFFIX

__all__ = ["ROOT", "PUBLISHED_PROFILE", "REFERENCES_PROFILE", "RUNS_LAST", "toc_pages", "toc_chapters", "CHAPTERS"]


ROOT = Path(__file__).resolve().parents[2]


# The profile whose run the committed chapters carry (the README says how to regenerate it): the CPU profile with
# seeds enough to test the claims; the full profile's GPU run replaces it once a GPU has run it (scripts/gpu_book.sh).
PUBLISHED_PROFILE = "cpu"
# nbval's references (tests/notebooks) are its dry run, which the test suite trains and executes them in
REFERENCES_PROFILE = PUBLISHED_PROFILE + DRY_RUN_SUFFIX


RUNS_LAST = "intro"  # the one exception to _toc.yml's order: its summary gathers every other chapter's results


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

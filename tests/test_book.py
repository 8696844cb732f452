"""The book's chapters: thin, listed by _toc.yml, nbval's references in step with them, the committed ones the
published run's; nbval catching a regression, the paper profile's data path through a chapter (the runner:
test_book_runner.py; rendering: test_book_html.py; the published profile's dry run: test_book_dry_run.py)."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml
from nbformat.v4 import new_code_cell

from clothparse_lib import book
from clothparse_lib.data.fixtures import write_imaterialist_fixture

ROOT = book.ROOT
REFERENCES = ROOT / "tests" / "notebooks"
ARTIFACTS = ROOT / "test-artifacts"


def _read(path):
    return nbformat.read(path, as_version=4)


def _cells(path):
    return [(c.cell_type, c.source, c.metadata.get("tags", [])) for c in book.source_cells(_read(path))]


def _injected(path):
    return "\n".join(c.source for c in _read(path).cells if "injected-parameters" in c.metadata.get("tags", []))


def test_toc_lists_every_chapter_and_nothing_else():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    listed = [toc["root"]] + [c["file"] for c in toc["chapters"]]
    assert sorted(listed) == sorted(f"book/{c}" for c in book.CHAPTERS + book.toc_pages())  # + References (Markdown)
    assert sorted(p.stem for p in (ROOT / "book").glob("*.ipynb")) == sorted(book.CHAPTERS)


@pytest.mark.parametrize("chapter", book.CHAPTERS)
def test_chapter_is_thin_and_parameterised(chapter):
    cells = book.source_cells(_read(ROOT / "book" / f"{chapter}.ipynb"))
    params = [c for c in cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and re.search(r'^profile = "demo"', params[0].source, re.M)
    code = [c.source for c in cells if c.cell_type == "code"]
    assert not [s for s in code if re.search(r"^\s*(def|class|lambda) ", s, re.M)], "chapters call the library"
    assert max(len(s.splitlines()) for s in code) <= 12, "long code belongs in clothparse_lib"


@pytest.mark.parametrize("chapter", book.CHAPTERS)
def test_reference_has_the_chapters_cells(chapter):
    """nbval's reference = the chapter's cells with the published profile's dry run's outputs (`clothparse book
    references` re-makes it)."""
    assert _cells(REFERENCES / f"{chapter}.ipynb") == _cells(ROOT / "book" / f"{chapter}.ipynb"), \
        "tests/notebooks is out of date: run `clothparse book references`"
    assert f'profile = "{book.REFERENCES_PROFILE}"' in _injected(REFERENCES / f"{chapter}.ipynb")
    checked = [c for c in _read(REFERENCES / f"{chapter}.ipynb").cells if "nbval-check-output" in c.metadata.get("tags", [])]
    assert all(c.outputs for c in checked), "a checked cell without outputs checks nothing"


@pytest.mark.parametrize("chapter", book.CHAPTERS)
def test_committed_chapters_carry_the_published_run(chapter):
    nb = _read(ROOT / "book" / f"{chapter}.ipynb")
    assert f'profile = "{book.PUBLISHED_PROFILE}"' in _injected(ROOT / "book" / f"{chapter}.ipynb"), \
        f"the committed book is the {book.PUBLISHED_PROFILE} profile's run: `clothparse book run --profile {book.PUBLISHED_PROFILE}`"
    code = [c for c in book.source_cells(nb) if c.cell_type == "code"]
    assert all(c.execution_count for c in code) and book.unfinished(nb) is None
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]


# --- nbval catches a regression ---

def _nbval(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax",
                           "--nbval-current-env", str(path)], cwd=path.parent, capture_output=True, text=True)


def test_nbval_fails_when_the_category_map_changes(tmp_path):
    """The refinement chapter's category table is checked: changing the map fails nbval."""
    nb = _read(REFERENCES / "refinement.ipynb")
    end = next(i for i, c in enumerate(nb.cells) if "mapping_table()" in c.source)
    nb.cells = nb.cells[: end + 1]
    assert "nbval-check-output" in nb.cells[end].metadata["tags"]
    nbformat.write(nb, tmp_path / "same.ipynb")
    nb.cells.insert(end, new_code_cell("from clothparse_lib import taxonomy\n"
                                       "taxonomy.CCP_MAP['jeans'] = 'shorts'  # a regression"))
    nbformat.write(nb, tmp_path / "changed.ipynb")
    same, changed = _nbval(tmp_path / "same.ipynb"), _nbval(tmp_path / "changed.ipynb")
    assert same.returncode == 0, same.stdout[-3000:]
    assert changed.returncode == 1 and "Cell outputs differ" in changed.stdout, changed.stdout[-3000:]
    assert "jeans" in changed.stdout  # the changed table is shown


def test_paper_profile_prepares_kaggle_data_through_the_chapter(tmp_path):
    """The refinement chapter, unchanged, prepares the paper profile's data from Kaggle-format files
    (up to the person detector, whose Mask R-CNN weights need a download)."""
    import papermill

    write_imaterialist_fixture(tmp_path / "data" / "imaterialist", n=12, seed=1)
    nb = _read(ROOT / "book" / "refinement.ipynb")
    nb.cells = book.source_cells(nb)
    nb.cells = nb.cells[: next(i for i, c in enumerate(nb.cells) if "refinement.summary(run)" in c.source)]
    nbformat.write(nb, tmp_path / "refinement.ipynb")
    out = papermill.execute_notebook(str(tmp_path / "refinement.ipynb"), str(tmp_path / "out.ipynb"), progress_bar=False,
                                     parameters={"profile": "paper", "data_dir": str(tmp_path / "data")},
                                     kernel_name="python3", cwd=str(tmp_path))
    text = json.dumps([o for c in out.cells if c.cell_type == "code" for o in c.outputs])
    assert "pixel" in text and "shoe" in text
    assert list((Path(os.environ["CLOTHPARSE_RUNS_DIR"]) / "paper").glob("split.csv"))

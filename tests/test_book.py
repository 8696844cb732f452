"""The book: thin chapters, nbval's references in step with them, the papermill runner (skips, failures,
--from), nbval catching a regression, the paper profile's data path, and the smoke book rendered by
jupyter-book and opened in headless Chromium (screenshots in test-artifacts/)."""
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
import yaml
from nbformat.v4 import new_code_cell, new_notebook

from clothparse_lib import book
from clothparse_lib.data.fixtures import write_imaterialist_fixture
from clothparse_lib.results.plan import planned_trainings
from clothparse_lib.results.run import Run

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
    """nbval's reference = the chapter's cells with smoke outputs (`clothparse book references` re-makes it)."""
    assert _cells(REFERENCES / f"{chapter}.ipynb") == _cells(ROOT / "book" / f"{chapter}.ipynb"), \
        "tests/notebooks is out of date: run `clothparse book references`"
    assert 'profile = "smoke"' in _injected(REFERENCES / f"{chapter}.ipynb")
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


# --- the runner, on a book of tiny chapters ---

def _tiny_book(root: Path, chapters: dict[str, list[str]]) -> Path:
    (root / "book").mkdir(parents=True, exist_ok=True)
    for name, sources in chapters.items():
        nb = new_notebook(cells=[new_code_cell('profile = "demo"', metadata={"tags": ["parameters"]})]
                          + [new_code_cell(s) for s in sources])
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, root / "book" / f"{name}.ipynb")
    return root


def _statuses(results):
    return {r.chapter: r.status for r in results}


def test_runner_skips_unchanged_chapters_and_reruns_downstream(tmp_path):
    root = _tiny_book(tmp_path, {"a": ["x = 1"], "b": ["print('profile', profile)"]})
    run = lambda **kw: book.run_book("smoke", root=root, runs_dir=tmp_path / "runs", chapters=("a", "b"),
                                     progress=False, **kw)
    assert _statuses(run()) == {"a": "executed", "b": "executed"}
    b = _read(root / "book" / "b.ipynb")
    assert "profile smoke" in b.cells[-1].outputs[0]["text"]
    assert _statuses(run()) == {"a": "skipped", "b": "skipped"}
    _tiny_book(tmp_path, {"b": ["print('profile', profile, 2)"]})  # only the second chapter changed
    assert _statuses(run()) == {"a": "skipped", "b": "executed"}
    _tiny_book(tmp_path, {"a": ["x = 2"]})  # a change upstream re-runs what follows
    assert _statuses(run()) == {"a": "executed", "b": "executed"}
    assert _statuses(run(parameters={"extra": 1})) == {"a": "executed", "b": "executed"}
    times = book.chapter_times(tmp_path / "runs" / "smoke")
    assert sorted(times.index) == ["a", "b"] and (times["seconds"] > 0).all()


def test_runner_reports_the_failing_cell_and_resumes_from_it(tmp_path):
    root = _tiny_book(tmp_path, {"a": ["x = 1"], "b": ["y = 2", "raise ValueError('boom')"], "c": ["z = 3"]})
    run = lambda **kw: book.run_book("smoke", root=root, runs_dir=tmp_path / "runs", chapters=("a", "b", "c"),
                                     progress=False, **kw)
    with pytest.raises(book.ChapterFailed) as failure:
        run()
    e = failure.value
    assert (e.chapter, e.cell) == ("b", 4) and "ValueError: boom" in e.error  # In [4]: after papermill's parameters
    assert "In [4] (raise ValueError('boom'))" in str(e) and "--from b" in str(e)
    partial = _read(e.notebook)
    assert partial.cells[1].execution_count is not None  # what ran before the failure is kept
    with pytest.raises(RuntimeError, match="chapter 'b' is not rendered: its execution failed"):
        book.build_html(root)
    assert "c" not in book.chapter_times(tmp_path / "runs" / "smoke").index
    _tiny_book(tmp_path, {"b": ["y = 2"]})
    assert _statuses(run(start="b")) == {"a": "skipped", "b": "executed", "c": "executed"}
    with pytest.raises(ValueError, match="unknown chapter"):
        run(start="nope")
    with pytest.raises(ValueError, match="unknown profile"):
        book.run_book("nope", root=root, chapters=("a",))


class Killed(Exception):
    pass


def test_killed_chapter_is_re_executed_and_never_rendered(tmp_path, monkeypatch):
    """`book run --force` killed inside a chapter: its old stamp is gone from disk, the next run executes it,
    and until then the half-executed notebook is refused by the renderer."""
    import papermill

    root = _tiny_book(tmp_path, {"a": ["x = 1"], "b": ["y = 2"]})
    run = lambda **kw: book.run_book("smoke", root=root, runs_dir=tmp_path / "runs", chapters=("a", "b"),
                                     progress=False, **kw)
    run()

    def killed_mid_chapter(input_path, output_path, **kwargs):  # papermill saves as cells run, then the kill
        nb = _read(input_path)
        for cell, status in zip(nb.cells, ["completed", "running", "pending"]):
            cell.metadata["papermill"] = {"status": status}
        nbformat.write(nb, output_path)
        raise Killed

    monkeypatch.setattr(papermill, "execute_notebook", killed_mid_chapter)
    with pytest.raises(Killed):
        run(force=True)
    monkeypatch.undo()
    assert "a" not in json.loads((tmp_path / "runs" / "smoke" / "book-stamps.json").read_text())
    with pytest.raises(RuntimeError, match="chapter 'a' is not rendered: its execution did not finish"):
        book.build_html(root)
    assert _statuses(run()) == {"a": "executed", "b": "skipped"}
    assert book.unfinished(_read(root / "book" / "a.ipynb")) is None


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


# --- the smoke book, rendered and opened in a browser ---

PROBE = """<script>window.addEventListener("load", () => {
  const broken = [...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute("src"));
  document.body.setAttribute("data-probe", JSON.stringify({images: document.images.length, broken: broken,
    tables: document.querySelectorAll("table").length, title: document.title}));
});</script>"""
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
                  "--no-first-run", "--disable-component-update", "--disable-sync", "--hide-scrollbars"]
# at least this many (tables, images) on each chapter's page
EXPECTED = {"intro": (2, 0), "refinement": (5, 2), "architecture": (3, 1), "training": (2, 2), "baselines": (4, 1),
            "ablations": (7, 0), "confusion": (0, 2), "qualitative": (0, 6), "beyond": (3, 2)}


def _chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        message = "Debian's chromium is not installed (scripts/install_chromium.sh)"
        if os.environ.get("CLOTHPARSE_REQUIRE_BROWSER"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def _probe(chromium: str, page: Path, profile_dir: Path) -> dict:
    html = page.read_text()
    probe = page.with_name(f"probe-{page.name}")
    probe.write_text(html.replace("</body>", PROBE + "</body>"))
    result = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile_dir}", "--virtual-time-budget=15000",
                             "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120)
    probe.unlink()
    found = re.search(r'data-probe="([^"]*)"', result.stdout)
    assert found, f"no probe result for {page.name}: {result.stderr[-2000:]}"
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))


@pytest.mark.slow
def test_smoke_book_renders_and_opens_in_chromium(tmp_path):
    """The smoke book (nbval's references: the chapters as the runner executed them with the smoke profile, which
    nbval re-executes above) rendered with warnings as errors, every page opened in a browser."""
    chromium = _chromium()
    root = tmp_path / "project"
    (root / "book").mkdir(parents=True)
    for f in ("_config.yml", "_toc.yml"):
        shutil.copy(ROOT / f, root / f)
    for chapter in book.CHAPTERS:
        shutil.copy(REFERENCES / f"{chapter}.ipynb", root / "book")
    html = book.build_html(root, quiet=True)  # warnings are errors
    ARTIFACTS.mkdir(exist_ok=True)
    problems = []
    for chapter in book.CHAPTERS:
        page = html / "book" / f"{chapter}.html"
        found = _probe(chromium, page, tmp_path / "chromium")
        tables, images = EXPECTED[chapter]
        if found["broken"] or found["tables"] < tables or found["images"] < images:
            problems.append(f"{chapter}: {found}, expected at least {tables} tables and {images} images")
        shot = ARTIFACTS / f"smoke-{chapter}.png"
        shot.unlink(missing_ok=True)
        subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium'}", "--window-size=1280,2400",
                        "--virtual-time-budget=15000", f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120)
        if not (shot.exists() and shot.stat().st_size > 10_000):
            problems.append(f"{chapter}: no screenshot")
    assert not problems, "\n".join(problems)


@pytest.mark.slow
@pytest.mark.ccp
def test_full_profile_dry_run_runs_the_whole_book_with_concurrent_trainings(tmp_path, ccp_root):
    """The GPU profile's whole path on a CPU: CCP, the planned trainings two at a time, every chapter, verdicts."""
    book.copy_chapters(tmp_path)
    t = time.perf_counter()
    results = book.run_book("full-dry", root=tmp_path, runs_dir=tmp_path / "runs", data_dir=ccp_root.parent, jobs=2,
                            progress=False)
    print(f"full-dry book: {time.perf_counter() - t:.0f} s")
    assert [r.status for r in results] == ["executed"] * len(book.CHAPTERS)
    run_dir = tmp_path / "runs" / "full-dry"
    assert "trainings (concurrent)" in book.chapter_times(run_dir).index
    run = Run.open("full-dry", run_dir, str(ccp_root.parent))
    planned = planned_trainings(run)
    assert len(planned) == 18 and all(run.evaluated(*job) for job in planned)
    intro = _read(tmp_path / "book" / "intro.ipynb")
    claims = next(c for c in intro.cells if "verdicts.claims(run)" in c.source).outputs[-1]["data"]["text/html"]
    assert "skirt → dress" in claims and "Our model beats Plain U-Net" in claims
    assert any(v in claims for v in ("reproduced", "inconclusive"))

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
from clothparse_lib.settings import tag
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


# --- the runner, on a book of tiny chapters (jobs=1: no trainings before them) ---

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
                                     progress=False, jobs=1, **kw)
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


def test_training_wall_time_adds_up_over_resumed_sessions(tmp_path):
    from clothparse_lib.book.runner import _record_time

    path = tmp_path / "book-times.csv"
    _record_time(path, "trainings (concurrent)", 100.0, add=True)
    _record_time(path, "intro", 5.0)
    _record_time(path, "trainings (concurrent)", 20.5, add=True)  # a second session trained the rest
    _record_time(path, "intro", 3.0)  # a chapter's latest execution replaces the earlier
    assert book.chapter_times(tmp_path)["seconds"].to_dict() == {"intro": 3.0, "trainings (concurrent)": 120.5}


def test_runner_reports_the_failing_cell_and_resumes_from_it(tmp_path):
    root = _tiny_book(tmp_path, {"a": ["x = 1"], "b": ["y = 2", "raise ValueError('boom')"], "c": ["z = 3"]})
    run = lambda **kw: book.run_book("smoke", root=root, runs_dir=tmp_path / "runs", chapters=("a", "b", "c"),
                                     progress=False, jobs=1, **kw)
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
                                     progress=False, jobs=1, **kw)
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


def test_the_runner_holds_its_run_folder_and_its_chapters_train(tmp_path):
    """`book run` twice on one run folder: the second stops, naming the first; the first's chapter kernels lock the
    model folders they train in, not the run folder the runner holds."""
    from clothparse_lib.locks import FolderLocked

    root = _tiny_book(tmp_path, {"a": [
        "import os\nfrom clothparse_lib.locks import FolderLocked, folder_lock\n"
        "run = os.path.join(os.environ['CLOTHPARSE_RUNS_DIR'], 'smoke')",
        "try:\n    with folder_lock(run):\n        raise AssertionError('the run folder is not held')\n"
        "except FolderLocked as e:\n    print(e)",
        "with folder_lock(os.path.join(run, 'models', 'plain_unet-refined')):\n    print('training')"]})
    run = lambda: book.run_book("smoke", root=root, runs_dir=tmp_path / "runs", chapters=("a",), progress=False,
                                jobs=1, force=True)
    assert _statuses(run()) == {"a": "executed"}
    outputs = "".join(o.get("text", "") for c in _read(root / "book" / "a.ipynb").cells for o in c.get("outputs", []))
    assert f"in use by process {os.getpid()}" in outputs and "training" in outputs
    holder = subprocess.Popen([sys.executable, "-c", "import sys\nfrom clothparse_lib.locks import folder_lock\n"
                               "with folder_lock(sys.argv[1]):\n    print('held', flush=True)\n    sys.stdin.read()",
                               str(tmp_path / "runs" / "smoke")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    try:
        with pytest.raises(FolderLocked, match=f"in use by process {holder.pid}"):
            run()
    finally:
        holder.stdin.close()
        holder.wait(30)


def test_a_full_disk_stops_the_book_in_one_line(tmp_path):
    from clothparse_lib.storage import DiskFull

    root = _tiny_book(tmp_path, {"a": ["raise OSError(28, 'No space left on device')"]})
    with pytest.raises(DiskFull) as full:
        book.run_book("smoke", root=root, runs_dir=tmp_path / "runs", chapters=("a",), progress=False, jobs=1)
    assert str(full.value).startswith("chapter 'a': [Errno 28] No space left") and "\n" not in str(full.value)


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
  const href = selector => { const a = document.querySelector(selector); return a ? a.getAttribute("href") : null; };
  document.body.setAttribute("data-probe", JSON.stringify({images: document.images.length, broken: broken,
    tables: document.querySelectorAll("table").length, title: document.title,
    repository: href("a.btn-source-repository-button"), issues: href("a.btn-source-issues-button"),
    binder: href('a[href^="https://mybinder.org/"]'), colab: href('a[href^="https://colab.research.google.com/"]'),
    download: href("a.btn-download-source-button"),
    citations: [...document.querySelectorAll('a[href*="references.html#"]')].map(a => a.getAttribute("href")),
    entries: [...document.querySelectorAll("div.citation")].map(d => d.id)}));
});</script>"""
# opens the header's dropdowns (launch, repository, download) for a screenshot of the buttons
OPEN_MENUS = """<script>window.addEventListener("load", () => document.querySelectorAll(
  ".article-header-buttons .dropdown-menu").forEach((m, i) => { m.classList.add("show");
  m.style.position = "absolute"; m.style.top = "40px"; m.style.right = `${i * 190}px`; m.style.left = "auto"; }));</script>"""
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
                  "--no-first-run", "--disable-component-update", "--disable-sync", "--hide-scrollbars"]
# at least this many (tables, images) on each chapter's page
EXPECTED = {"intro": (2, 0), "refinement": (5, 2), "architecture": (3, 1), "training": (2, 2), "baselines": (4, 1),
            "ablations": (7, 0), "confusion": (0, 2), "qualitative": (0, 6), "beyond": (3, 2)}
ORIGIN = "https://github.com/example-owner/clothparse.git"  # a test's own remote: the buttons must point at it
REPOSITORY = "https://github.com/example-owner/clothparse"


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


def _screenshot(chromium: str, url: str, shot: Path, profile_dir: Path, size: str = "1280,2400") -> bool:
    shot.unlink(missing_ok=True)
    subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile_dir}", f"--window-size={size}",
                    "--virtual-time-budget=15000", f"--screenshot={shot}", url], capture_output=True, timeout=120)
    return shot.exists() and shot.stat().st_size > 10_000


def _screenshot_with(chromium: str, page: Path, script: str, shot: Path, profile_dir: Path, size: str) -> bool:
    """A screenshot of ``page`` with ``script`` run after loading (a copy of the page; headless Chromium draws a
    blank page when a script or an anchor scrolls it, so the scripts only open menus and highlight)."""
    changed = page.with_name(f"shot-{page.name}")
    changed.write_text(page.read_text().replace("</body>", script + "</body>"))
    try:
        return _screenshot(chromium, changed.as_uri(), shot, profile_dir, size=size)
    finally:
        changed.unlink()


def _buttons_screenshot(chromium: str, page: Path, shot: Path, profile_dir: Path) -> bool:
    """The page's top with its header's dropdowns opened: the launch, repository and download buttons."""
    return _screenshot_with(chromium, page, OPEN_MENUS, shot, profile_dir, size="1280,700")


def _target_screenshot(chromium: str, page: Path, target: str, shot: Path, profile_dir: Path) -> bool:
    """The page with the element ``target`` (a citation's entry) highlighted, as following the link shows it."""
    script = ('<script>window.addEventListener("load", () => { const e = document.getElementById("%s");'
              ' e.style.background = "#fff3b0"; e.style.outline = "3px solid #d9a400"; });</script>' % target)
    return _screenshot_with(chromium, page, script, shot, profile_dir, size="1280,2400")


def _smoke_book(root: Path, origin: str | None, monkeypatch) -> Path:
    """nbval's references (the smoke book as the runner executed it) with the book's configuration, bibliography and
    References page, in a checkout of their own (``origin``: its remote, or none), rendered with warnings as errors."""
    (root / "book").mkdir(parents=True)
    for f in ("_config.yml", "_toc.yml", "references.bib", "book/references.md", "book/try.md"):
        shutil.copy(ROOT / f, root / f)
    shutil.copytree(ROOT / "book" / "try", root / "book" / "try")  # the Try it page's code
    for chapter in book.CHAPTERS:
        shutil.copy(REFERENCES / f"{chapter}.ipynb", root / "book")
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True)
    if origin:
        subprocess.run(["git", "-C", str(root), "remote", "add", "origin", origin], check=True)
    monkeypatch.delenv("CLOTHPARSE_REPOSITORY_URL", raising=False)
    monkeypatch.delenv("CLOTHPARSE_REPOSITORY_BRANCH", raising=False)
    return book.build_html(root, quiet=True)


@pytest.mark.slow
def test_smoke_book_renders_and_opens_in_chromium(tmp_path, monkeypatch, chromium):
    """The smoke book (nbval's references: the chapters as the runner executed them with the smoke profile, which
    nbval re-executes above) rendered with warnings as errors from a checkout whose origin is on GitHub, every page
    opened in a browser: tables and images, the References page listing every entry, citations linking to it, the
    repository, issue, download and launch buttons pointing at the origin."""
    html = _smoke_book(tmp_path / "project", ORIGIN, monkeypatch)
    ARTIFACTS.mkdir(exist_ok=True)
    profile = tmp_path / "chromium"
    problems, found = [], {}
    for chapter in book.CHAPTERS:
        page = html / "book" / f"{chapter}.html"
        found[chapter] = _probe(chromium, page, profile)
        tables, images = EXPECTED[chapter]
        if found[chapter]["broken"] or found[chapter]["tables"] < tables or found[chapter]["images"] < images:
            problems.append(f"{chapter}: {found[chapter]}, expected at least {tables} tables and {images} images")
        buttons = {k: found[chapter][k] or "" for k in ("repository", "issues", "binder", "colab", "download")}
        expected = {"repository": REPOSITORY, "issues": f"{REPOSITORY}/issues/new?",
                    "binder": f"https://mybinder.org/v2/gh/example-owner/clothparse/main?urlpath=lab/tree/book/{chapter}.ipynb",
                    "colab": f"https://colab.research.google.com/github/example-owner/clothparse/blob/main/book/{chapter}.ipynb",
                    "download": f"../_sources/book/{chapter}.ipynb"}
        if any(not buttons[k].startswith(v) for k, v in expected.items()):
            problems.append(f"{chapter}: buttons {buttons}, expected {expected}")
        if not found[chapter]["citations"]:
            problems.append(f"{chapter}: no citation links to the References page")
        if not _screenshot(chromium, page.as_uri(), ARTIFACTS / f"smoke-{chapter}.png", profile):
            problems.append(f"{chapter}: no screenshot")
    references = _probe(chromium, html / "book" / "references.html", profile)
    n_entries = len(re.findall(r"^@\w+\{", (ROOT / "references.bib").read_text(), re.M))
    if len(references["entries"]) != n_entries:
        problems.append(f"References page: {len(references['entries'])} entries, references.bib has {n_entries}")
    for chapter, probe in found.items():
        dangling = [h for h in probe["citations"] if h.split("#")[1] not in references["entries"]]
        if dangling:
            problems.append(f"{chapter}: citations linking to no entry of the References page: {dangling}")
    if not _screenshot(chromium, (html / "book" / "references.html").as_uri(), ARTIFACTS / "smoke-references.png", profile):
        problems.append("references: no screenshot")
    page, target = found["baselines"]["citations"][0].split("#")  # a citation followed: its entry, highlighted
    if not _target_screenshot(chromium, html / "book" / page, target, ARTIFACTS / "smoke-citation-target.png", profile):
        problems.append("citation target: no screenshot")
    if not _buttons_screenshot(chromium, html / "book" / "baselines.html", ARTIFACTS / "smoke-buttons-github.png", profile):
        problems.append("buttons: no screenshot")
    assert not problems, "\n".join(problems)


@pytest.mark.slow
def test_smoke_book_without_a_github_remote_has_no_repository_buttons(tmp_path, monkeypatch, chromium):
    """No GitHub origin, no address: the pages have no repository, issue or launch buttons (the download stays)."""
    html = _smoke_book(tmp_path / "project", "/srv/git/clothparse.git", monkeypatch)
    ARTIFACTS.mkdir(exist_ok=True)
    for chapter in ("intro", "baselines"):
        found = _probe(chromium, html / "book" / f"{chapter}.html", tmp_path / "chromium")
        assert {k: found[k] for k in ("repository", "issues", "binder", "colab")} == dict.fromkeys(
            ("repository", "issues", "binder", "colab")), found
        assert found["download"] and found["citations"]
    assert "example-owner" not in (html / "book" / "baselines.html").read_text()
    assert _buttons_screenshot(chromium, html / "book" / "baselines.html", ARTIFACTS / "smoke-buttons-none.png",
                               tmp_path / "chromium")


@pytest.mark.slow
@pytest.mark.ccp
def test_published_profile_dry_run_runs_the_whole_book_with_concurrent_trainings(tmp_path, ccp_root):
    """The published profile's whole path in minutes: CCP, the planned trainings two at a time, every chapter,
    verdicts (their table and figure)."""
    book.copy_chapters(tmp_path)
    profile = book.PUBLISHED_PROFILE + "-dry"
    t = time.perf_counter()
    results = book.run_book(profile, root=tmp_path, runs_dir=tmp_path / "runs", data_dir=ccp_root.parent, jobs=2,
                            progress=False)
    print(f"{profile} book: {time.perf_counter() - t:.0f} s")
    assert [r.status for r in results] == ["executed"] * len(book.CHAPTERS)
    run_dir = tmp_path / "runs" / profile
    assert "trainings (concurrent)" in book.chapter_times(run_dir).index
    run = Run.open(profile, run_dir, str(ccp_root.parent))
    planned = planned_trainings(run)
    assert len(planned) == len(set(planned)) >= 9 and all(run.evaluated(*job) for job in planned)
    intro = _read(tmp_path / "book" / "intro.ipynb")
    claims = next(c for c in intro.cells if c.source == "viz.verdict_table(claims)").outputs[-1]["data"]["text/html"]
    assert "skirt → dress" in claims and "Our model beats Plain U-Net" in claims and "low (95 %)" in claims
    assert any(v in claims for v in ("reproduced", "inconclusive")) and "background-color: #" in claims
    figure = next(c for c in intro.cells if "viz.verdict_plot(claims)" in c.source).outputs
    assert any("image/png" in o.get("data", {}) for o in figure)
    trainings = next(c for c in intro.cells if c.source == "trainings").outputs[-1]["data"]["text/plain"]
    assert all(tag(*job) in trainings for job in planned)

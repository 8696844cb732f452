"""The dry run's book (nbval's references: the published profile's dry run) rendered by jupyter-book and opened in
headless Chromium, with and without a GitHub remote (screenshots in test-artifacts/)."""
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from test_book import ARTIFACTS, REFERENCES, ROOT

from clothparse_lib import book

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
DRY_RUN = book.REFERENCES_PROFILE  # the run nbval's references come from
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


def _dry_run_book(root: Path, origin: str | None, monkeypatch, as_run: bool = False) -> Path:
    """nbval's references (the published profile's dry run's book as the runner executed it) with the book's configuration, bibliography and
    References page, in a checkout of their own (``origin``: its remote, or none), rendered with warnings as errors:
    as the checkout's book, or (``as_run``) as the chapters a run executed (``book build --profile PROFILE-dry``)."""
    chapters = root / "runs" / DRY_RUN / "book" if as_run else root / "book"
    chapters.mkdir(parents=True)
    (root / "book").mkdir(exist_ok=True)
    for f in ("_config.yml", "_toc.yml", "references.bib", "book/references.md", "book/try.md"):
        shutil.copy(ROOT / f, root / f)
    shutil.copytree(ROOT / "book" / "try", root / "book" / "try")  # the Try it page's code
    for chapter in book.CHAPTERS:
        shutil.copy(REFERENCES / f"{chapter}.ipynb", chapters)
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True)
    if origin:
        subprocess.run(["git", "-C", str(root), "remote", "add", "origin", origin], check=True)
    monkeypatch.delenv("CLOTHPARSE_REPOSITORY_URL", raising=False)
    monkeypatch.delenv("CLOTHPARSE_REPOSITORY_BRANCH", raising=False)
    return book.build_html(root, run_dir=root / "runs" / DRY_RUN if as_run else None, quiet=True)


@pytest.mark.slow
def test_dry_run_book_renders_and_opens_in_chromium(tmp_path, monkeypatch, chromium):
    """The dry run's book (nbval's references: the chapters as the runner executed them with the published profile's
    dry run, which nbval re-executes) rendered as a run's chapters, warnings as errors, from a checkout whose origin
    is on GitHub, every page opened in a browser: tables and images, the References page listing every entry, citations linking to it, the
    repository, issue, download and launch buttons pointing at the origin."""
    html = _dry_run_book(tmp_path / "project", ORIGIN, monkeypatch, as_run=True)
    assert html == tmp_path / "project" / "runs" / DRY_RUN / "site" / "_build" / "html"
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
        if not _screenshot(chromium, page.as_uri(), ARTIFACTS / f"dry-run-{chapter}.png", profile):
            problems.append(f"{chapter}: no screenshot")
    references = _probe(chromium, html / "book" / "references.html", profile)
    n_entries = len(re.findall(r"^@\w+\{", (ROOT / "references.bib").read_text(), re.M))
    if len(references["entries"]) != n_entries:
        problems.append(f"References page: {len(references['entries'])} entries, references.bib has {n_entries}")
    for chapter, probe in found.items():
        dangling = [h for h in probe["citations"] if h.split("#")[1] not in references["entries"]]
        if dangling:
            problems.append(f"{chapter}: citations linking to no entry of the References page: {dangling}")
    if not _screenshot(chromium, (html / "book" / "references.html").as_uri(), ARTIFACTS / "dry-run-references.png", profile):
        problems.append("references: no screenshot")
    page, target = found["baselines"]["citations"][0].split("#")  # a citation followed: its entry, highlighted
    if not _target_screenshot(chromium, html / "book" / page, target, ARTIFACTS / "dry-run-citation-target.png", profile):
        problems.append("citation target: no screenshot")
    if not _buttons_screenshot(chromium, html / "book" / "baselines.html", ARTIFACTS / "dry-run-buttons-github.png", profile):
        problems.append("buttons: no screenshot")
    assert not problems, "\n".join(problems)


@pytest.mark.slow
def test_dry_run_book_without_a_github_remote_has_no_repository_buttons(tmp_path, monkeypatch, chromium):
    """No GitHub origin, no address: the pages have no repository, issue or launch buttons (the download stays)."""
    html = _dry_run_book(tmp_path / "project", "/srv/git/clothparse.git", monkeypatch)
    ARTIFACTS.mkdir(exist_ok=True)
    for chapter in ("intro", "baselines"):
        found = _probe(chromium, html / "book" / f"{chapter}.html", tmp_path / "chromium")
        assert {k: found[k] for k in ("repository", "issues", "binder", "colab")} == dict.fromkeys(
            ("repository", "issues", "binder", "colab")), found
        assert found["download"] and found["citations"]
    assert "example-owner" not in (html / "book" / "baselines.html").read_text()
    assert _buttons_screenshot(chromium, html / "book" / "baselines.html", ARTIFACTS / "dry-run-buttons-none.png",
                               tmp_path / "chromium")

"""The published profile's dry run: its whole book on 64 CCP photos, the trainings two at a time."""
import time

import pytest
from test_book import _read
from test_book_runner import _executed

from clothparse_lib import book
from clothparse_lib.profiles import get_profile
from clothparse_lib.results.plan import planned_trainings
from clothparse_lib.results.run import Run
from clothparse_lib.runfolder import tag


@pytest.mark.slow
@pytest.mark.ccp
def test_published_profile_dry_run_runs_the_whole_book_with_concurrent_trainings(tmp_path, ccp_root):
    """The published profile's whole path in minutes: CCP, the planned trainings two at a time, every chapter,
    verdicts (their table and figure)."""
    profile = book.PUBLISHED_PROFILE + "-dry"
    t = time.perf_counter()
    results = book.run_book(get_profile(profile), runs_dir=tmp_path / "runs", data_dir=ccp_root.parent, jobs=2, progress=False)
    print(f"{profile} book: {time.perf_counter() - t:.0f} s")
    assert [r.status for r in results] == ["executed"] * len(book.CHAPTERS)
    run_dir = tmp_path / "runs" / profile
    assert "trainings (concurrent)" in book.chapter_times(run_dir).index
    run = Run.open(profile, run_dir, str(ccp_root.parent))
    planned = planned_trainings(run)
    assert len(planned) == len(set(planned)) >= 9 and all(run.evaluated(*job) for job in planned)
    intro = _read(_executed(tmp_path, "intro", profile))
    claims = next(c for c in intro.cells if c.source == "viz.verdict_table(claims)").outputs[-1]["data"]["text/html"]
    assert "skirt pixels are most often taken for dress" in claims and "Our model beats Plain U-Net" in claims and "low (95 %)" in claims
    assert any(v in claims for v in ("reproduced", "inconclusive")) and "background-color: #" in claims
    figure = next(c for c in intro.cells if "viz.verdict_plot(claims)" in c.source).outputs
    assert any("image/png" in o.get("data", {}) for o in figure)
    trainings = next(c for c in intro.cells if c.source == "trainings").outputs[-1]["data"]["text/plain"]
    assert all(tag(*job) in trainings for job in planned)

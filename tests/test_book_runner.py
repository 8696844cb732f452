"""The papermill runner on a book of tiny chapters: executing into the run folder, skips, failures, --from, a killed
chapter, the run folder's lock, a full disk; publishing a run into the book."""
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook
from test_book import _injected, _read  # noqa: E402 - tests/ is on sys.path

from clothparse_lib import book
from clothparse_lib.profiles import get_profile

SMOKE = get_profile("smoke")

# a book of tiny chapters (jobs=1: no trainings before them)


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


def _executed(tmp_path, chapter, profile="smoke"):
    return tmp_path / "runs" / profile / "book" / f"{chapter}.ipynb"


def test_runner_skips_unchanged_chapters_and_reruns_downstream(tmp_path):
    root = _tiny_book(tmp_path, {"a": ["x = 1"], "b": ["print('profile', profile)"]})
    run = lambda **kw: book.run_book(SMOKE, root=root, runs_dir=tmp_path / "runs", chapters=("a", "b"),
                                     progress=False, jobs=1, **kw)
    assert _statuses(run()) == {"a": "executed", "b": "executed"}
    b = _read(_executed(tmp_path, "b"))
    assert "profile smoke" in b.cells[-1].outputs[0]["text"]
    assert not _read(root / "book" / "b.ipynb").cells[-1].outputs, "the book's own chapters are left as they are"
    assert _statuses(run()) == {"a": "skipped", "b": "skipped"}
    _executed(tmp_path, "b").unlink()  # a run folder without an executed chapter executes it again
    assert _statuses(run()) == {"a": "skipped", "b": "executed"}
    _tiny_book(tmp_path, {"b": ["print('profile', profile, 2)"]})  # only the second chapter changed
    assert _statuses(run()) == {"a": "skipped", "b": "executed"}
    _tiny_book(tmp_path, {"a": ["x = 2"]})  # a change upstream re-runs what follows
    assert _statuses(run()) == {"a": "executed", "b": "executed"}
    assert _statuses(run(parameters={"extra": 1})) == {"a": "executed", "b": "executed"}
    times = book.chapter_times(tmp_path / "runs" / "smoke")
    assert sorted(times.index) == ["a", "b"] and (times["seconds"] > 0).all()


def test_training_wall_time_adds_up_over_resumed_sessions(tmp_path):
    from clothparse_lib.book.records import record_time

    record_time(tmp_path, "trainings (concurrent)", 100.0, add=True)
    record_time(tmp_path, "intro", 5.0)
    record_time(tmp_path, "trainings (concurrent)", 20.5, add=True)  # a second session trained the rest
    record_time(tmp_path, "intro", 3.0)  # a chapter's latest execution replaces the earlier
    assert book.chapter_times(tmp_path)["seconds"].to_dict() == {"intro": 3.0, "trainings (concurrent)": 120.5}


def test_runner_reports_the_failing_cell_and_resumes_from_it(tmp_path):
    root = _tiny_book(tmp_path, {"a": ["x = 1"], "b": ["y = 2", "raise ValueError('boom')"], "c": ["z = 3"]})
    run = lambda **kw: book.run_book(SMOKE, root=root, runs_dir=tmp_path / "runs", chapters=("a", "b", "c"),
                                     progress=False, jobs=1, **kw)
    with pytest.raises(book.ChapterFailed) as failure:
        run()
    e = failure.value
    assert (e.chapter, e.cell) == ("b", 4) and "ValueError: boom" in e.error  # In [4]: after papermill's parameters
    assert "In [4] (raise ValueError('boom'))" in str(e) and "--from b" in str(e)
    partial = _read(e.notebook)
    assert partial.cells[1].execution_count is not None  # what ran before the failure is kept
    with pytest.raises(RuntimeError, match="chapter 'b' is not rendered: its execution failed"):
        book.build_html(root, run_dir=tmp_path / "runs" / "smoke")
    assert "c" not in book.chapter_times(tmp_path / "runs" / "smoke").index
    _tiny_book(tmp_path, {"b": ["y = 2"]})
    assert _statuses(run(start="b")) == {"a": "skipped", "b": "executed", "c": "executed"}
    with pytest.raises(ValueError, match="unknown chapter"):
        run(start="nope")
    with pytest.raises(ValueError, match="unknown profile"):
        book.run_book(get_profile("nope"), root=root, chapters=("a",))


class Killed(Exception):
    pass


def test_killed_chapter_is_re_executed_and_never_rendered(tmp_path, monkeypatch):
    """`book run --force` killed inside a chapter: its old stamp is gone from disk, the next run executes it,
    and until then the half-executed notebook is refused by the renderer."""
    import papermill

    root = _tiny_book(tmp_path, {"a": ["x = 1"], "b": ["y = 2"]})
    run = lambda **kw: book.run_book(SMOKE, root=root, runs_dir=tmp_path / "runs", chapters=("a", "b"),
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
        book.build_html(root, run_dir=tmp_path / "runs" / "smoke")
    with pytest.raises(RuntimeError, match="a: its execution did not finish"):
        book.publish(tmp_path / "runs" / "smoke", root, chapters=("a", "b"))
    assert _statuses(run()) == {"a": "executed", "b": "skipped"}
    assert book.unfinished(_read(_executed(tmp_path, "a"))) is None


def test_a_finished_run_is_published_into_the_book_whole_or_not_at_all(tmp_path):
    """`book publish`: the run's executed chapters replace the book's, only when each one finished and was executed
    from the book's current cells; a refusal writes nothing."""
    from clothparse_lib.cli import main

    root = _tiny_book(tmp_path, {"a": ["x = 1"], "b": ["print(profile)"]})
    run_dir = tmp_path / "runs" / "smoke"
    with pytest.raises(RuntimeError, match="a: not executed; b: not executed"):
        book.publish(run_dir, root, chapters=("a", "b"))
    assert main(["book", "publish", "--profile", "smoke", "--run-dir", str(run_dir)]) == 2  # the book's chapters
    book.run_book(SMOKE, root=root, runs_dir=tmp_path / "runs", chapters=("a", "b"), progress=False, jobs=1)
    _tiny_book(tmp_path, {"b": ["print(profile, 2)"]})  # the book changed after the run
    before = {c: (root / "book" / f"{c}.ipynb").read_bytes() for c in "ab"}
    with pytest.raises(RuntimeError, match="b: executed from other cells than the book's"):
        book.publish(run_dir, root, chapters=("a", "b"))
    assert {c: (root / "book" / f"{c}.ipynb").read_bytes() for c in "ab"} == before
    book.run_book(SMOKE, root=root, runs_dir=tmp_path / "runs", chapters=("a", "b"), progress=False, jobs=1)
    assert book.publish(run_dir, root, chapters=("a", "b")) == [root / "book" / "a.ipynb", root / "book" / "b.ipynb"]
    assert "smoke 2" in _read(root / "book" / "b.ipynb").cells[-1].outputs[0]["text"]
    assert 'profile = "smoke"' in _injected(root / "book" / "b.ipynb")


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
    run = lambda: book.run_book(SMOKE, root=root, runs_dir=tmp_path / "runs", chapters=("a",), progress=False,
                                jobs=1, force=True)
    assert _statuses(run()) == {"a": "executed"}
    outputs = "".join(o.get("text", "") for c in _read(_executed(tmp_path, "a")).cells for o in c.get("outputs", []))
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
        book.run_book(SMOKE, root=root, runs_dir=tmp_path / "runs", chapters=("a",), progress=False, jobs=1)
    assert str(full.value).startswith("chapter 'a': [Errno 28] No space left") and "\n" not in str(full.value)

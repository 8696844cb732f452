import contextlib
import io
import os
import struct
import tempfile
import zlib
from pathlib import Path

import pytest

from clothparse_lib.book.chapters import REFERENCES_PROFILE

SCRATCH = Path(tempfile.mkdtemp(prefix="clothparse-tests-"))  # this process's; removed at its end
SHARED = "CLOTHPARSE_TESTS_SHARED"  # a folder of the first process (xdist's controller), inherited by its workers
REQUIRE_DATA = "CLOTHPARSE_REQUIRE_DATA"  # set (CI): tests that need CCP fail instead of skipping
DRY_RUN = REFERENCES_PROFILE  # the published profile's dry run: nbval's chapters execute in it


def pytest_configure(config):
    """nbval's kernels start outside any test, with this process's environment: give them scratch folders
    too (a test's own folders come from the fixture below). Under pytest-xdist each worker (a process of its own,
    with its own scratch folder, given whole test files: a chapter's cells run in order in one kernel) and the
    kernels and commands it starts get an equal share of the cores."""
    os.environ["CLOTHPARSE_RUNS_DIR"] = str(SCRATCH / "runs")
    os.environ.setdefault("CLOTHPARSE_CACHE_DIR", str(SCRATCH / "cache"))
    os.environ["OMP_NUM_THREADS"] = str(_threads())
    os.environ.setdefault(SHARED, str(SCRATCH / "shared"))


def pytest_unconfigure(config):
    """Scratch folders hold trained models (GBs): gone with the process (the controller's with the shared one)."""
    import shutil

    shutil.rmtree(SCRATCH, ignore_errors=True)


def _threads() -> int:
    """Torch's threads per test process: the suite targets 2 cores, shared by the xdist workers."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    return max(1, min(2, os.cpu_count() or 1) // workers)


def pytest_collection_modifyitems(session, config, items):
    """The files with slow tests first (pytest-xdist hands out whole files in this order, so that the longest start
    first and the short ones fill the workers' ends); nbval's chapters skip without the CCP copy they run on."""
    slow = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow)
    if _ccp_root() is None and not os.environ.get(REQUIRE_DATA):
        for item in filter(_reads_dry_run, items):
            item.add_marker(pytest.mark.skip(reason=f"CCP not found (CLOTHPARSE_DATA_DIR): {DRY_RUN} runs on it"))


def pytest_collection_finish(session):
    """The published profile's dry run (CCP) trained once per test session, before any test: nbval's chapters
    (tests/notebooks) execute in its folder, so that each chapter executes once per suite, and the tests that read
    trained models share it (the ``dry_run`` fixture). The first worker trains it, two trainings at a time, in a
    folder the session's workers share (the others wait for its lock: the cores are busy meanwhile), then each
    worker takes a copy. Nothing is trained when pytest only collects."""
    if session.config.option.collectonly:
        return
    if any(_reads_dry_run(item) for item in session.items if not item.get_closest_marker("skip")):
        if _ccp_root() is None:
            raise pytest.UsageError(f"CCP not found (CLOTHPARSE_DATA_DIR): {DRY_RUN} runs on it")
        _copy_trained_dry_run(SCRATCH / "runs", _ccp_root().parent)


def _reads_dry_run(item) -> bool:
    return item.path.suffix == ".ipynb" or "dry_run" in getattr(item, "fixturenames", ())


def _copy_trained_dry_run(runs: Path, data_dir: Path) -> None:
    """The dry run's planned trainings, done once in the shared folder (by the runner, as ``book run`` does before
    its first chapter), copied into ``runs``."""
    import shutil

    from clothparse_lib.book import run_book
    from clothparse_lib.locks import folder_lock
    from clothparse_lib.profiles import get_profile

    shared = Path(os.environ[SHARED])
    with folder_lock(shared, wait=True):
        if not (shared / f"{DRY_RUN}.trained").exists():
            run_book(get_profile(DRY_RUN), runs_dir=shared, data_dir=data_dir, chapters=(), progress=False,
                     jobs=min(2, os.cpu_count() or 1))
            (shared / f"{DRY_RUN}.trained").touch()
    shutil.copytree(shared / DRY_RUN, runs / DRY_RUN, dirs_exist_ok=True, copy_function=_link_checkpoints)


def _link_checkpoints(src, dst):
    """Checkpoints (1.4 GB in all) as hard links: they are only ever replaced whole (``os.replace``), never written
    in place; the other files as copies."""
    import shutil

    if str(src).endswith(".pt"):
        try:
            return os.link(src, dst)
        except OSError:  # another file system
            pass
    return shutil.copy2(src, dst)


def _ccp_root() -> Path | None:
    """The local CCP copy, located by $CLOTHPARSE_DATA_DIR."""
    data = os.environ.get("CLOTHPARSE_DATA_DIR")
    root = Path(data) / "ccp" if data else None
    return root if root is not None and (root / "annotations" / "pixel-level").is_dir() else None


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test writes caches and runs under a temporary folder, never into the user's; the data's default home
    is temporary too, and fetching CCP there fails at once (tests never download)."""
    from clothparse_lib import settings
    from clothparse_lib.data import ccp

    monkeypatch.setenv("CLOTHPARSE_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.setenv("CLOTHPARSE_RUNS_DIR", str(tmp_path_factory.getbasetemp() / "runs"))
    monkeypatch.setattr(settings, "DEFAULT_DATA_DIR", tmp_path_factory.getbasetemp() / "datasets")
    monkeypatch.setattr(ccp, "REPOSITORY_ZIP", (tmp_path_factory.getbasetemp() / "no-downloads-in-tests.zip").as_uri())


@pytest.fixture(autouse=True, scope="session")
def _two_threads():
    """Torch on at most 2 threads, the cores of the machines the suite targets (1 per xdist worker on 2 cores)."""
    import torch
    torch.set_num_threads(_threads())


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    """The smoke profile shrunk (24 synthetic images at 32x32, random encoder) and its prepared data, on one thread
    (tiny trainings are as fast, and far faster on cores others use too): seconds per training."""
    from dataclasses import replace

    import torch

    from clothparse_lib.data.prepared import prepare_dataset
    from clothparse_lib.profiles import get_profile

    smoke = get_profile("smoke")
    profile = replace(smoke, size=(32, 32), source_params={"n": 24, "seed": 0, "height": 64, "width": 64},
                      train=replace(smoke.train, weights=None))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield profile, prepare_dataset(profile, run_dir=tmp_path_factory.mktemp("tiny"), progress=False)
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def dry_run(ccp_root):
    """The published profile's dry run (CCP), its models trained before the first test
    (:func:`pytest_collection_finish`), the run folder nbval's chapters execute in: tests that read trained models
    and results share it."""
    from clothparse_lib.results.run import Run

    return Run.open(DRY_RUN, SCRATCH / "runs" / DRY_RUN, str(ccp_root.parent), progress=False, device="cpu")


@pytest.fixture(scope="session")
def ccp_root() -> Path:
    """The local CCP copy, located by $CLOTHPARSE_DATA_DIR (skips without it, fails in CI)."""
    root = _ccp_root()
    if root is None:
        message = f"CCP not found (CLOTHPARSE_DATA_DIR={os.environ.get('CLOTHPARSE_DATA_DIR')!r})"
        if os.environ.get(REQUIRE_DATA):
            pytest.fail(message)
        pytest.skip(message)
    return root


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium for the browser tests (skips without it, fails where CI requires it)."""
    import shutil

    path = shutil.which("chromium")
    if path is None:
        message = "Debian's chromium is not installed (scripts/install_chromium.sh)"
        if os.environ.get("CLOTHPARSE_REQUIRE_BROWSER"):
            pytest.fail(message)
        pytest.skip(message)
    return path


class Killed(Exception):
    """A run killed on purpose by a test."""


@pytest.fixture
def killed_after_first_epoch(monkeypatch):
    """A context in which a training dies (:class:`Killed`, expected) right after its first epoch's checkpoint, as a
    killed process would."""
    from clothparse_lib.training.resume import Checkpointer

    original = Checkpointer.after_epoch

    def after_epoch(self):
        original(self)
        raise Killed("killed after the first epoch")

    @contextlib.contextmanager
    def killed():
        monkeypatch.setattr(Checkpointer, "after_epoch", after_epoch)
        try:
            with pytest.raises(Killed):
                yield
        finally:
            monkeypatch.setattr(Checkpointer, "after_epoch", original)

    return killed


@pytest.fixture
def bomb_png(tmp_path) -> Path:
    """A 1x1 PNG whose header claims 30000x30000 pixels (far above PIL's decompression-bomb limit)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    data[16:24] = struct.pack(">II", 30000, 30000)  # IHDR width, height
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))  # IHDR checksum
    path = tmp_path / "bomb.png"
    path.write_bytes(bytes(data))
    return path

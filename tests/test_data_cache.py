import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clothparse_lib.data import DataError, build_cache, class_stats, open_cache, parse_size
from clothparse_lib.data.synthetic import SyntheticSource
from clothparse_lib.taxonomy import N_CLASSES


def test_parse_size():
    assert parse_size("288x192") == (288, 192) and parse_size((64, 32)) == (64, 32)
    for bad in ("288", "100x64", (0, 32), "axb"):
        with pytest.raises(ValueError):
            parse_size(bad)


def test_cache_content_matches_resized_source(tmp_path):
    src = SyntheticSource(n=6, height=192, width=128)
    cache = build_cache(src, (96, 64), root=tmp_path, workers=1, progress=False)
    assert cache.images.shape == (6, 96, 64, 3) and cache.masks.shape == (6, 96, 64)
    assert list(cache.index["image_id"]) == src.ids()
    s = src.read(src.ids()[2])
    assert (cache.masks[2] == np.asarray(Image.fromarray(s.mask).resize((64, 96), Image.NEAREST))).all()
    assert cache.masks.max() < N_CLASSES
    assert cache.index.loc[2, "height"] == 192  # the index describes the full-size source


def test_reused_while_unchanged_rebuilt_when_changed(tmp_path):
    a = build_cache(SyntheticSource(n=4), (64, 64), root=tmp_path, workers=1, progress=False)
    stamp = (a.path / "manifest.json").stat().st_mtime_ns
    again = build_cache(SyntheticSource(n=4), (64, 64), root=tmp_path, workers=1, progress=False)
    assert again.path == a.path and (a.path / "manifest.json").stat().st_mtime_ns == stamp
    changed = build_cache(SyntheticSource(n=5), (64, 64), root=tmp_path, workers=1, progress=False)
    assert changed.path != a.path and len(changed) == 5
    assert not a.path.exists(), "the stale cache of the same source and size is removed"
    other_size = build_cache(SyntheticSource(n=5), (32, 32), root=tmp_path, workers=1, progress=False)
    assert other_size.path != changed.path and changed.path.exists()


@dataclass
class FailsOnImage3(SyntheticSource):
    """Raises ``error`` on image 3: ``KeyboardInterrupt`` dies like a killed process; ``StopIteration`` is a reader
    bug that would silently end a ``map`` over the images."""

    error: type = KeyboardInterrupt

    def read(self, image_id):
        if image_id.endswith("3"):
            raise self.error
        return super().read(image_id)


def test_interrupted_build_leaves_nothing_that_looks_complete(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        build_cache(FailsOnImage3(n=6, name="synthetic"), (64, 64), root=tmp_path, workers=1, progress=False)
    assert not list(tmp_path.glob("*/manifest.json")) and not list(tmp_path.iterdir())
    cache = build_cache(SyntheticSource(n=6), (64, 64), root=tmp_path, workers=1, progress=False)
    assert len(open_cache(cache.path)) == 6


def test_parallel_build_equals_serial(tmp_path):
    src = SyntheticSource(n=9, height=96, width=64)
    serial = build_cache(src, (64, 32), root=tmp_path / "a", workers=1, progress=False)
    parallel = build_cache(src, (64, 32), root=tmp_path / "b", workers=2, progress=False)
    assert (np.asarray(serial.images) == np.asarray(parallel.images)).all()
    assert serial.index.equals(parallel.index)


class Empty(SyntheticSource):
    def ids(self):
        return []


def test_empty_source_is_an_error(tmp_path):
    with pytest.raises(DataError, match="empty"):
        build_cache(Empty(n=0), (64, 64), root=tmp_path, progress=False)


def test_class_stats_against_naive_count(tmp_path):
    cache = build_cache(SyntheticSource(n=7, height=96, width=64), (64, 32), root=tmp_path, workers=1, progress=False)
    stats = class_stats(cache, chunk=3)
    masks = np.asarray(cache.masks)
    for c in range(N_CLASSES):
        assert stats["images"].iloc[c] == sum((m == c).any() for m in masks)
        assert stats["pixel_share_%"].iloc[c] == pytest.approx(100 * (masks == c).mean())


def test_a_build_never_ends_early_without_saying_so(tmp_path):
    with pytest.raises(RuntimeError, match="stopped early at image .*3: 3 cached and 0 skipped of 6"):
        build_cache(FailsOnImage3(n=6, error=StopIteration), (64, 64), root=tmp_path, workers=1, progress=False)
    assert not list(tmp_path.glob("*/manifest.json"))


STUCK_BUILD = """
import os, sys
from clothparse_lib.data import build_cache
from clothparse_lib.data.synthetic import SyntheticSource
never, _ = os.pipe()

class Stuck(SyntheticSource):
    def read(self, image_id):
        os.write(1, b'%d\\n' % os.getpid())  # one write: under -u (xdist's workers) print's two could interleave
        os.read(never, 1)  # nothing is ever written: the worker is busy until the build is killed

build_cache(Stuck(n=8), (32, 32), root=sys.argv[1], workers=2, progress=False)
"""


START_LIMIT = 600  # seconds for the readers to start: a guard against a hang, not a timing (1-2 s on idle cores)


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
def test_killed_build_leaves_no_worker_running(tmp_path):
    build = subprocess.Popen([sys.executable, "-c", STUCK_BUILD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    timed_out = threading.Event()
    timer = threading.Timer(START_LIMIT, lambda: (timed_out.set(), build.kill()))  # never wait forever
    workers = []
    timer.start()
    try:
        while len(workers) < 2:  # the readers' pids (anything else the build prints, e.g. a blank line, is skipped)
            line = build.stdout.readline()
            assert not timed_out.is_set(), f"no reader started in {START_LIMIT} s"
            assert line, "the build ended before its readers started"
            workers += [int(token) for token in line.split() if token.isdigit()]
    finally:
        timer.cancel()
    build.kill()  # SIGKILL: no clean-up code of the build runs
    build.wait()
    try:
        deadline = time.monotonic() + 10
        while any(map(_running, workers)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(map(_running, workers)), "reader processes outlived the killed build"
    finally:
        for pid in filter(_running, workers):
            os.kill(pid, signal.SIGKILL)

"""Worker pools that stop with their command (:mod:`clothparse_lib.workers`, used by the book's concurrent
trainings): an interruption stops running and queued jobs at once, a Ctrl-C does not reach the jobs, and a command
killed by SIGKILL takes its workers with it."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clothparse_lib.workers import process_pool


def _sleep_in_job(pidfile: str) -> None:
    """A long job (run in a worker): writes its pid, sleeps, and records that it unwound."""
    Path(pidfile).write_text(str(os.getpid()))
    try:
        time.sleep(300)
    finally:
        Path(pidfile + ".unwound").write_text("")


def _wait_for(condition, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)


def _gone(pid: int) -> bool:
    """Exited: no such process, or a zombie nobody reaped yet."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_an_interrupted_pool_stops_its_jobs_at_once_and_ignores_ctrl_c(tmp_path):
    job = [tmp_path / f"job{i}" for i in range(4)]
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        with process_pool(2, grace=30) as pool:
            futures = [pool.submit(_sleep_in_job, str(j)) for j in job]
            _wait_for(lambda: job[0].exists() and job[1].exists())
            os.kill(int(job[0].read_text()), signal.SIGINT)  # a Ctrl-C reaches the whole process group
            time.sleep(1.0)
            assert not futures[0].done() and not job[2].exists(), "the Ctrl-C stopped the job and its worker took the next"
            raise KeyboardInterrupt
    assert time.monotonic() - start < 30, "the pool waited for its jobs"
    assert all(_gone(int(j.read_text())) for j in job[:2])
    assert all(Path(f"{j}.unwound").exists() for j in job[:2]), "the running jobs did not unwind"
    assert not job[2].exists() and not job[3].exists(), "a queued job started"


def test_a_killed_command_takes_its_workers_with_it(tmp_path):
    pidfile = tmp_path / "job"
    command = subprocess.Popen([sys.executable, "-c", f"""
import sys, time
sys.path.insert(0, {str(Path(__file__).parent)!r})
from clothparse_lib.workers import process_pool
from test_workers import _sleep_in_job
with process_pool(1) as pool:
    pool.submit(_sleep_in_job, {str(pidfile)!r})
    time.sleep(300)
"""])
    try:
        _wait_for(pidfile.exists)
        command.kill()
        command.wait()
        worker = int(pidfile.read_text())
        _wait_for(lambda: _gone(worker), timeout=30)
        _wait_for(Path(f"{pidfile}.unwound").exists, timeout=5)  # SIGTERM, not SIGKILL: the job unwound
    finally:
        command.kill()

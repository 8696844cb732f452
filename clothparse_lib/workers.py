"""Worker processes that stop with the command that started them.

:func:`process_pool` is a spawn :class:`~concurrent.futures.ProcessPoolExecutor` for long jobs (the book's
trainings) with two guarantees the plain executor lacks:

* **An interruption stops the jobs at once.** When the block is left by an exception (Ctrl-C, SIGTERM, an error),
  the queued jobs are cancelled and the running ones are sent SIGTERM, instead of ``shutdown(wait=True)`` waiting
  for every queued job to finish. A worker unwinds its job from SIGTERM as from an exception (a training's pending
  checkpoint write completes: ``last.pt`` of its last epoch stays) and exits; one still running after
  ``grace`` seconds is killed. Workers ignore SIGINT: a Ctrl-C in the terminal reaches the whole process group,
  and the command that started them decides.
* **A killed command takes its workers with it.** Linux sends each worker SIGTERM when the process that started it
  dies, even by SIGKILL (``PR_SET_PDEATHSIG``): no orphaned worker trains on.
"""
from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
from concurrent.futures import ProcessPoolExecutor

__all__ = ["die_with_parent", "process_pool"]

_PR_SET_PDEATHSIG = 1


def die_with_parent(signum: int = signal.SIGKILL) -> None:
    """Have Linux send this process ``signum`` when the process (strictly: the thread) that started it dies;
    elsewhere (no prctl) nothing."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signum)


class _Stopped(BaseException):
    """SIGTERM in a worker: its job unwinds (``finally`` blocks run), then the worker exits."""


_in_job = False


def _on_sigterm(signum, frame):
    if not _in_job:  # idle, waiting for a job: nothing to unwind
        os._exit(128 + signum)
    raise _Stopped()


def _init_worker(initializer, initargs) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_sigterm)
    die_with_parent(signal.SIGTERM)
    if initializer is not None:
        initializer(*initargs)


def _call(fn, args, kwargs):
    global _in_job
    _in_job = True
    try:
        try:
            return fn(*args, **kwargs)
        finally:
            _in_job = False
    except _Stopped:  # not returned as the job's error: the executor's worker would take the next job
        os._exit(128 + signal.SIGTERM)


class _Pool(ProcessPoolExecutor):
    def submit(self, fn, /, *args, **kwargs):
        return super().submit(_call, fn, args, kwargs)


def _stop(pool: ProcessPoolExecutor, grace: float) -> None:
    """Cancel the queued jobs, SIGTERM the running ones, kill those still alive after ``grace`` seconds."""
    processes = list((pool._processes or {}).values())  # the executor's own record (Python 3.14: terminate_workers)
    pool.shutdown(wait=False, cancel_futures=True)
    for p in processes:
        with contextlib.suppress(OSError, ValueError):
            p.terminate()
    for p in processes:
        p.join(grace)
        if p.is_alive():
            p.kill()
            p.join()


@contextlib.contextmanager
def process_pool(workers: int, initializer=None, initargs: tuple = (), grace: float = 120.0):
    """A spawn process pool of ``workers`` for the block; see the module's doc for how it stops. ``initializer``
    runs in each worker after the signals are set; ``grace``: seconds a stopped job has to unwind."""
    pool = _Pool(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker,
                 initargs=(initializer, initargs))
    try:
        yield pool
    except BaseException:
        _stop(pool, grace)
        raise
    pool.shutdown()

"""The book's trainings, several at a time on one machine.

The trainings of a run are independent (:func:`results.plan.planned_trainings`). A batch-16 training keeps
a large GPU busy only part of the time (the Python loop, the data and the optimizer steps leave it idle), and on a
CPU one-thread trainings side by side use the cores better than one training on all of them, so
:func:`train_concurrently` runs ``jobs`` of them at once in worker processes sharing the machine, each training and
evaluating its model exactly as a chapter's ``run.ensure`` would (same folders, checkpoints, resumption). The
data set and its split are prepared once, before the workers start. A failed training does not stop the
others; the failures are reported together at the end, and a full disk (:class:`storage.DiskFull`) is raised then.
An interruption (Ctrl-C, SIGTERM) stops every training at once, each keeping the checkpoint of its last epoch, and a
killed command takes its trainings with it (:func:`workers.process_pool`).
"""
from __future__ import annotations

import os
from concurrent.futures import as_completed
from pathlib import Path

from tqdm.auto import tqdm

from ..profiles import get_profile
from ..results.plan import planned_trainings
from ..results.run import Run
from ..runfolder import tag
from ..storage import DiskFull
from ..workers import process_pool

__all__ = ["GPU_MEMORY_PER_JOB", "MAX_JOBS", "default_jobs", "TrainingsFailed", "train_concurrently"]


GPU_MEMORY_PER_JOB = 6 * 2**30  # generous: a batch-16 training at 288x192 with mixed precision peaks at ~3 GiB
MAX_JOBS = 16  # the fastai loop keeps about one CPU core busy per training


def default_jobs(device: str | None = None) -> int:
    """Concurrent trainings for this machine. On a CPU, one per core, each on one thread: two one-thread
    trainings do more than one two-thread training (bare train step of the extended U-Net at 128x96 with the fast
    CPU path on 2 cores: 2 x 14.1 vs 23.5 images/s; the book's trainings measured in the README). On a GPU, as many
    as its memory and the CPU cores allow (one core per worker is kept for the data path)."""
    import torch

    cores = len(os.sched_getaffinity(0))
    if not torch.cuda.is_available() or (device and not str(device).startswith("cuda")):
        return max(1, min(MAX_JOBS, cores))
    memory = torch.cuda.get_device_properties(torch.device(device or "cuda")).total_memory
    return max(1, min(MAX_JOBS, cores - 1, memory // GPU_MEMORY_PER_JOB))


def _worker_init(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _train_and_evaluate(profile: str, run_dir: str, data_dir: str | None, device: str | None, model: str,
                        variant: str, seed: int) -> str:
    run = Run(get_profile(profile), Path(run_dir), data_dir, device, progress=False)
    run.ensure(model, variant, seed)
    return tag(model, variant, seed)


class TrainingsFailed(RuntimeError):
    """Some of the concurrent trainings failed (``failures``: tag -> error); the others (``done``) completed."""

    def __init__(self, failures: dict[str, str], done: list[str]):
        super().__init__(f"{len(failures)} of {len(failures) + len(done)} trainings failed:\n" +
                         "\n".join(f"  {name}: {error}" for name, error in failures.items()))
        self.failures, self.done = failures, done


def train_concurrently(run: Run, jobs: int, progress: bool = True, on_done=None) -> list[str]:
    """Train and evaluate every planned model of ``run`` that is not done yet, ``jobs`` at a time; returns the
    tags trained. ``on_done(tag)`` is called as each one completes (a run killed later keeps what it recorded).
    Raises :class:`TrainingsFailed` naming every training that failed (the others complete), or the
    :class:`storage.DiskFull` of one that found the disk full."""
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    run.base(), run.refined()  # the caches and splits, once, before the workers read them
    todo = [job for job in planned_trainings(run) if not run.evaluated(*job)]
    if not todo:
        return []
    threads = max(1, len(os.sched_getaffinity(0)) // min(jobs, len(todo)))
    failures, full = {}, None
    with process_pool(min(jobs, len(todo)), initializer=_worker_init, initargs=(threads,)) as pool:
        futures = {pool.submit(_train_and_evaluate, run.profile.name, str(run.run_dir), run.data_dir, run.device, *job):
                   tag(*job) for job in todo}
        bar = tqdm(as_completed(futures), total=len(futures), disable=not progress,
                   desc=f"training {len(todo)} models, {min(jobs, len(todo))} at a time")
        for future in bar:
            try:
                future.result()
                if on_done is not None:
                    on_done(futures[future])
            except Exception as e:  # noqa: BLE001 - reported with the others below
                failures[futures[future]] = f"{type(e).__name__}: {e}"
                full = e if isinstance(e, DiskFull) else full
    if full is not None:  # the chapters would only find the disk full again
        raise full
    done = [name for name in futures.values() if name not in failures]
    if failures:
        raise TrainingsFailed(failures, done)
    return done

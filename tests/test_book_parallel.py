"""Concurrent trainings: what a machine runs at once, and what a training process may not do."""
import os

from clothparse_lib.book.parallel import MAX_JOBS, default_jobs
from clothparse_lib.data import loaders
from clothparse_lib.data.prepared import prepare_dataset
from clothparse_lib.profiles import get_profile


def test_one_job_per_core_on_a_cpu(monkeypatch):
    """One-thread trainings side by side, one per core (each worker sets torch to cores // jobs threads)."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    assert default_jobs("cpu") == 2
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    assert default_jobs("cpu") == 1
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)))
    assert default_jobs("cpu") == MAX_JOBS


def test_loaders_start_no_worker_processes(tmp_path):
    """Each of the book's concurrent trainings feeds its model from its own process: a loader with worker
    processes would start one per core per training, each copying the loader's CUDA tensors (the normalisation
    statistics) into a CUDA context of its own: that ran a GPU out of memory."""
    prepared = prepare_dataset(get_profile("smoke"), run_dir=tmp_path, progress=False)
    stats = ((0.5,) * 3, (0.5,) * 3)
    dls = loaders.make_dataloaders(prepared.cache, prepared.split, stats, batch_size=4, device="cpu")
    evaluation = loaders.test_loader(prepared.cache, prepared.split, stats, device="cpu")
    assert [dl.fake_l.num_workers for dl in (dls.train, dls.valid, evaluation)] == [0, 0, 0]  # fastai's worker count

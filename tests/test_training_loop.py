"""The training loop's GPU-speed paths, on a CPU: training on the in-memory batches, precision, torch.compile per
phase, background checkpoints, and data-parallel training with two gloo processes."""
import hashlib
import json
import os
import subprocess
import sys
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from clothparse_lib.models import ModelOutput
from clothparse_lib.models.checkpoints import read_checkpoint
from clothparse_lib.profiles import TrainSettings
from clothparse_lib.training import loop, resume

ROOT = Path(__file__).resolve().parents[1]
STATS = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def train(prepared, settings, run_dir, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return loop.train_model(prepared, "plain_unet", settings, run_dir, device="cpu", progress=False, **kwargs)


# --- the training loop ---------------------------------------------------------------------------------------

def test_training_on_device_batches_resumes_after_a_kill(tiny_data, tmp_path, killed_after_first_epoch):
    """As tests/test_training.py's kill test, with batches gathered and augmented on the device: the resumed
    run ends with the history and weights of the uninterrupted one. (The host placement yields the same
    batches: test_same_seed_same_batches_on_either_placement.)"""
    profile, prepared = tiny_data
    placement = "device"
    settings = replace(profile.train, epochs_frozen=2, epochs_unfrozen=1, data_on_device=placement)
    with killed_after_first_epoch():
        train(prepared, settings, tmp_path / "a")
    folder = tmp_path / "a" / "models" / "plain_unet"
    assert len(pd.read_csv(folder / "history.csv")) == 1 and (folder / "last.pt").exists()
    train(prepared, settings, tmp_path / "a")
    train(prepared, settings, tmp_path / "b")
    resumed, straight = (pd.read_csv(tmp_path / r / "models" / "plain_unet" / "history.csv") for r in "ab")
    assert list(resumed[["phase", "epoch"]].itertuples(index=False)) == [(1, 1), (1, 2), (2, 1)]
    pd.testing.assert_frame_equal(resumed.drop(columns="seconds"), straight.drop(columns="seconds"))
    a, b = (read_checkpoint(tmp_path / r / "models" / "plain_unet" / "last.pt") for r in "ab")
    assert all(torch.equal(v, b["model"][k]) for k, v in a["model"].items())
    assert a["manifest"]["execution"]["batches"] == placement


def test_bf16_background_checkpoints_and_their_cost(tiny_data, tmp_path):
    """bf16 autocast on a CPU; checkpoints are on disk when train_model returns; their cost is reported."""
    profile, prepared = tiny_data
    timings = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        folder = train(prepared, replace(profile.train, precision="bf16"), tmp_path, timings=timings)
    history = pd.read_csv(folder / "history.csv")
    assert len(history) == 2 and np.isfinite(history["valid_loss"]).all()
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["execution"] | {"device": "cpu"} == {"device": "cpu", "batches": "fastai", "precision": "bf16",
                                                         "compile": False, "world_size": 1}
    assert not [w for w in caught if "shadowing" in str(w.message)]  # fastai's warning on the callback's name
    assert manifest["state"] == read_checkpoint(folder / "last.pt")["state"] == {"phase": 2, "epochs_done": 1,
                                                                                 "best_iou": manifest["state"]["best_iou"]}
    assert [(t["phase"], t["epoch"]) for t in timings] == [(1, 1), (2, 1)]
    for t in timings:
        assert 0 < t["checkpoint_seconds"] < t["epoch_seconds"] and t["write_seconds"] > 0


def test_old_manifests_resume_with_the_new_settings_at_their_defaults():
    old = {"model": "extended", "seed": 0, "size": [96, 64], "data": {},
           "settings": {k: v for k, v in TrainSettings().__dict__.items()
                        if k not in ("precision", "compile", "data_on_device", "cudnn_benchmark")}}
    new = old | {"settings": dict(TrainSettings().__dict__), "execution": {"batches": "fastai", "world_size": 1}}
    assert resume.resume_key(old) == resume.resume_key(new)
    assert resume.resume_key(new) != resume.resume_key(new | {"execution": {"batches": "device", "world_size": 1}})
    assert resume.resume_key(new) != resume.resume_key(new | {"settings": dict(TrainSettings(precision="bf16").__dict__)})
    ran_bf16 = new | {"execution": {"batches": "fastai", "world_size": 1, "precision": "bf16"}}
    assert resume.resume_key(ran_bf16) != resume.resume_key(ran_bf16 | {"execution": {**ran_bf16["execution"],
                                                                                       "precision": "fp32"}})


class StandIn(nn.Module):
    """A small model of the library's shape (an ``encoder`` with BatchNorm, a :class:`ModelOutput` of segmentation
    logits), quick to trace (the real models are traced by tests/test_models.py and below)."""

    def __init__(self, *_, img_size=(32, 32), **__):
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.head = nn.Conv2d(8, 9, 1)
        self.normalization, self.img_size = STATS, img_size

    def forward(self, x):
        return ModelOutput(self.head(self.encoder(x)))


def test_compile_is_done_per_phase(tiny_data, tmp_path, monkeypatch):
    """Phase 1 compiles the frozen model (its encoder's weights do not train, its BatchNorm does), phase 2
    compiles again, with the encoder trainable, and the encoder then trains."""
    profile, prepared = tiny_data
    compiled_with = []

    def backend(gm, example_inputs):  # records whether the encoder's conv was trainable when traced
        compiled_with.append(models[-1].encoder[0].weight.requires_grad)
        return gm.forward

    models = []

    def build(*args, **kwargs):
        models.append(StandIn(img_size=kwargs.get("img_size", (32, 32))))
        return models[-1]

    monkeypatch.setattr(loop, "build_model", build)
    monkeypatch.setattr(loop, "COMPILE_BACKEND", backend)
    settings = replace(profile.train, compile=True, epochs_frozen=1, epochs_unfrozen=0)
    try:
        folder = train(prepared, settings, tmp_path / "frozen")
        from fastai.torch_core import set_seed
        set_seed(0, reproducible=True)  # as train_model does before building the model
        initial = StandIn().state_dict()
        after1 = read_checkpoint(folder / "last.pt")["model"]
        assert torch.equal(after1["encoder.0.weight"], initial["encoder.0.weight"]), "frozen in phase 1"
        assert not torch.equal(after1["encoder.1.weight"], initial["encoder.1.weight"]), "BatchNorm trains (train_bn)"
        assert not torch.equal(after1["head.weight"], initial["head.weight"])
        assert compiled_with and not any(compiled_with)
        compiled_with.clear()
        folder = train(prepared, replace(settings, epochs_unfrozen=1), tmp_path / "both")
        assert False in compiled_with and True in compiled_with, "compiled again for phase 2"
        after2 = read_checkpoint(folder / "last.pt")["model"]
        assert not torch.equal(after2["encoder.0.weight"], initial["encoder.0.weight"]), "unfrozen in phase 2"
        assert type(loop.phase_model(models[-1], settings)).__name__ == "OptimizedModule"
        assert loop.phase_model(models[-1], replace(settings, compile=False)) is models[-1]
    finally:
        torch._dynamo.reset()


@pytest.mark.slow
def test_compiled_real_model_trains(tiny_data, tmp_path, monkeypatch):
    """The real model compiled, one phase (a compile per phase: test_compile_is_done_per_phase)."""
    profile, prepared = tiny_data
    monkeypatch.setattr(loop, "COMPILE_BACKEND", "aot_eager")
    settings = replace(profile.train, compile=True, epochs_unfrozen=0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            folder = loop.train_model(prepared, "extended", settings, tmp_path, device="cpu", progress=False)
        assert np.isfinite(pd.read_csv(folder / "history.csv")["valid_loss"]).all()
    finally:
        torch._dynamo.reset()


# --- data-parallel training: two CPU processes (gloo) ----------------------------------------------------------

def test_distributed_needs_torchrun(monkeypatch, capsys):
    from clothparse_lib.cli import main
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert main(["train", "--distributed", "--profile", "smoke", "--device", "cpu", "--quiet"]) == 2
    assert "under torchrun (WORLD_SIZE is not set)" in capsys.readouterr().err


@pytest.mark.slow
def test_distributed_training_on_two_cpu_processes(tmp_path):
    """`clothparse train --distributed` under torchrun with 2 gloo processes, 1 frozen + 1 unfrozen epoch (DDP
    wrapped anew per phase): both ranks end with the same weights (buffers included), which are last.pt's,
    and rank 0 alone wrote history, checkpoints and manifest."""
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1", "CLOTHPARSE_TEST_OUT": str(tmp_path)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           str(Path(__file__).with_name("ddp_worker.py")), "train", "--distributed", "--profile", "smoke", "--quiet",
           "--device", "cpu", "--model", "plain_unet", "--weights", "none", "--epochs-frozen", "1",
           "--epochs-unfrozen", "1", "--run-dir", str(run)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    digests = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert digests[0]["weights"] == digests[1]["weights"] and digests[0]["n_tensors"] > 0
    folder = run / "models" / "plain_unet"
    ckpt = read_checkpoint(folder / "last.pt")
    assert weights_digest(ckpt["model"]) == digests[0]["weights"]
    assert digests[0]["writes"] and not digests[1]["writes"], "rank 1 wrote files"
    assert {Path(p).name for p in digests[0]["writes"]} >= {"history.csv", "last.pt", "manifest.json"}
    history = pd.read_csv(folder / "history.csv")
    assert list(zip(history["phase"], history["epoch"])) == [(1, 1), (2, 1)]
    assert ckpt["manifest"]["execution"]["world_size"] == 2 and len(ckpt["rng_ranks"]) == 2
    assert "checkpoints and history in" in done.stdout


def weights_digest(state_dict) -> str:
    h = hashlib.sha256()
    for k, v in sorted(state_dict.items()):
        h.update(k.encode() + v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()

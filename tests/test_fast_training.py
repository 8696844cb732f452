"""The training loop's GPU-speed paths, on a CPU: batches gathered and augmented on the device, precision,
torch.compile per phase, background checkpoints, and data-parallel training with two gloo processes."""
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

from clothparse_lib.cli import build_parser
from clothparse_lib.cli.checks import train_settings
from clothparse_lib.data.device import TensorBatches, augment, draw_params, resolve_placement
from clothparse_lib.data.loaders import AUGMENTATION, make_dataloaders, training_dataloaders
from clothparse_lib.data.split import split_rows
from clothparse_lib.data.prepared import prepare_dataset
from clothparse_lib.models import ModelOutput
from clothparse_lib.models.checkpoints import read_checkpoint
from clothparse_lib.profiles import TrainSettings, get_profile
from clothparse_lib.training import callbacks, loop, resume

ROOT = Path(__file__).resolve().parents[1]
STATS = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny trainings: one thread is as fast, and far faster on cores others use too."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The smoke profile shrunk (24 synthetic images at 32x32, random encoder): seconds per training."""
    smoke = get_profile("smoke")
    profile = replace(smoke, size=(32, 32), source_params={"n": 24, "seed": 0, "height": 64, "width": 64},
                      train=replace(smoke.train, weights=None))
    run = tmp_path_factory.mktemp("tiny")
    return profile, prepare_dataset(profile, run_dir=run, progress=False)


def batch_of(prepared, n=6):
    rows = split_rows(prepared.cache, prepared.split, "train")[:n]
    images, masks = prepared.cache.batch(rows)
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div(255)
    return x, torch.from_numpy(masks.astype(np.int64))


def neutral(n):
    return {"flip": torch.zeros(n, dtype=torch.bool), "angle": torch.zeros(n), "brightness": torch.full((n,), 0.5),
            "contrast": torch.ones(n)}


def train(prepared, settings, run_dir, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return loop.train_model(prepared, "plain_unet", settings, run_dir, device="cpu", progress=False, **kwargs)


# --- the on-device augmentation ------------------------------------------------------------------------------

def test_augment_is_fastais_augmentation_given_the_same_draws(tiny):
    """Flip + rotation (one resampling, fastai's aspect correction), brightness then contrast in logit space:
    fastai's aug_transforms with the same draws give the same batch."""
    from fastai.torch_core import TensorImage, TensorMask
    from fastai.vision.augment import Brightness, Contrast, Flip, Rotate, setup_aug_tfms

    _, prepared = tiny
    x, y = batch_of(prepared)
    params = {"flip": torch.tensor([1, 0, 1, 0, 1, 0], dtype=torch.bool),
              "angle": torch.tensor([0.0, 7.5, -9.9, 3.0, 0.0, -4.2]),
              "brightness": torch.tensor([0.5, 0.46, 0.54, 0.5, 0.52, 0.45]),
              "contrast": torch.tensor([1.0, 0.92, 1.1, 1.05, 1.0, 0.9])}
    mine_x, mine_y = augment(x.clone(), y.clone(), params)
    kw = dict(p=1.0, pad_mode="zeros")
    tfms = setup_aug_tfms([Flip(draw=params["flip"].long().tolist(), **kw),
                           Rotate(max_deg=10, draw=params["angle"].tolist(), **kw),
                           Brightness(max_lighting=0.1, p=1.0, draw=params["brightness"].tolist()),
                           Contrast(max_lighting=0.1, p=1.0, draw=params["contrast"].tolist())])
    fx, fy = TensorImage(x.clone()), TensorMask(y.clone())
    for t in tfms:
        fx, fy = t((fx, fy), split_idx=0)
    assert torch.allclose(mine_x, fx.as_subclass(torch.Tensor), atol=1e-5)
    assert (mine_y == fy.as_subclass(torch.Tensor)).float().mean() > 0.999  # nearest: ties may round apart


def test_augment_shapes_dtypes_and_masks_stay_class_indices(tiny):
    _, prepared = tiny
    x, y = batch_of(prepared)
    g = torch.Generator().manual_seed(0)
    params = draw_params(len(x), g, AUGMENTATION)
    assert {k: v.shape for k, v in params.items()} == {k: (len(x),) for k in ("flip", "angle", "brightness", "contrast")}
    ax, ay = augment(x, y.to(torch.uint8), params)
    assert ax.shape == x.shape and ax.dtype == torch.float32 and ay.shape == y.shape and ay.dtype == torch.int64
    assert 0 <= ax.min() and ax.max() <= 1
    assert set(ay.unique().tolist()) <= set(y.unique().tolist())  # nearest: no value between two classes


def test_flip_and_rotation_move_image_and_mask_alike():
    """A 90-degree rotation and a flip are exact permutations of pixels: image and mask move the same way;
    at the paper's angles the mask stays where the image's garments went."""
    g = torch.Generator().manual_seed(1)
    y = torch.randint(0, 9, (2, 32, 32), generator=g)
    x = (y.float() / 8)[:, None].expand(-1, 3, -1, -1).contiguous()  # the image shows its mask
    p = neutral(2) | {"flip": torch.tensor([True, False]), "angle": torch.tensor([0.0, 90.0])}
    ax, ay = augment(x, y, p)
    assert torch.equal(ay[0], y[0].flip(-1)) and torch.allclose(ax[0], x[0].flip(-1), atol=1e-5)
    rotated = y[1].rot90(-1, (0, 1)) if torch.equal(ay[1], y[1].rot90(-1, (0, 1))) else y[1].rot90(1, (0, 1))
    assert torch.equal(ay[1], rotated) and torch.allclose(ax[1, 0], rotated.float() / 8, atol=1e-5)
    big = torch.zeros(1, 64, 48, dtype=torch.long)
    big[:, 16:48, 12:36] = 5  # one garment
    bx = (big.float() / 8)[:, None].expand(-1, 3, -1, -1).contiguous()
    ax, ay = augment(bx, big, neutral(1) | {"angle": torch.tensor([9.0]), "flip": torch.tensor([True])})
    inside = ax[0, 0] > 0.5 * 5 / 8
    assert ((ay[0] == 5) == inside).float().mean() > 0.99


def test_lighting_changes_images_not_masks(tiny):
    _, prepared = tiny
    x, y = batch_of(prepared, 4)
    same_x, same_y = augment(x, y, neutral(4))
    assert torch.allclose(same_x, x.clamp(1e-7, 1 - 1e-7), atol=1e-5) and torch.equal(same_y, y)
    lit = neutral(4) | {"brightness": torch.tensor([0.55, 0.45, 0.5, 0.5]), "contrast": torch.tensor([1, 1, 1.1, 0.9])}
    lx, ly = augment(x, y, lit)
    assert torch.equal(ly, y)
    assert lx[0].mean() > x[0].mean() + 0.01 and lx[1].mean() < x[1].mean() - 0.01
    assert lx[2].std() > x[2].std() and lx[3].std() < x[3].std()


# --- TensorBatches -------------------------------------------------------------------------------------------

def loader(prepared, split="train", **kwargs):
    rows = split_rows(prepared.cache, prepared.split, split)
    train = split == "train"
    return TensorBatches(prepared.cache, rows, STATS, 4, "cpu", shuffle=train, augment=train, drop_last=train, **kwargs)


def epoch(batches):
    return [(x.clone(), y.clone()) for x, y in batches]


def same(a, b):
    return len(a) == len(b) and all(torch.equal(x1, x2) and torch.equal(y1, y2) for (x1, y1), (x2, y2) in zip(a, b))


def test_same_seed_same_batches_on_either_placement(tiny):
    _, prepared = tiny
    a, b, c = loader(prepared, seed=3), loader(prepared, seed=3, placement="host"), loader(prepared, seed=4)
    first = epoch(a)
    assert len(first) == len(a) == len(split_rows(prepared.cache, prepared.split, "train")) // 4
    x, y = first[0]
    assert x.shape == (4, 3, 32, 32) and x.dtype == torch.float32 and y.shape == (4, 32, 32) and y.dtype == torch.int64
    assert same(first, epoch(b)) and not same(first, epoch(c))
    assert not same(first, epoch(a)), "every epoch draws a new order and new augmentations"
    state = a.rng.getstate()  # what a checkpoint keeps
    again = epoch(a)
    a.rng.setstate(state)
    assert same(again, epoch(a))


def test_valid_batches_are_the_fastai_loaders(tiny):
    _, prepared = tiny
    dls = make_dataloaders(prepared.cache, prepared.split, STATS, 4, "cpu")
    fastai = [(x.as_subclass(torch.Tensor), y.as_subclass(torch.Tensor)) for x, y in dls.valid]
    assert same(epoch(loader(prepared, "valid")), fastai)
    assert same(epoch(loader(prepared, "valid", placement="host")), fastai)


def test_ranks_share_every_global_batch(tiny):
    """Data-parallel: rank r of 2 yields its half of each batch the single process would draw at twice the
    batch size (the same order, the same augmentation); the fastai path shards alike."""
    _, prepared = tiny
    rows = split_rows(prepared.cache, prepared.split, "train")
    common = dict(shuffle=True, augment=True, drop_last=True, seed=5)
    whole = epoch(TensorBatches(prepared.cache, rows, STATS, 8, "cpu", **common))
    parts = [epoch(TensorBatches(prepared.cache, rows, STATS, 4, "cpu", rank=r, world=2, **common)) for r in (0, 1)]
    assert len(parts[0]) == len(parts[1]) == len(whole)
    for (x, y), (x0, y0), (x1, y1) in zip(whole, *parts):
        assert torch.equal(x, torch.cat([x0, x1])) and torch.equal(y, torch.cat([y0, y1]))
    shards = [make_dataloaders(prepared.cache, prepared.split, STATS, 4, "cpu", seed=5, rank=r, world=2).train
              for r in (0, 1)]
    idxs = [s.get_idxs() for s in shards]
    assert len(shards[0]) == len(rows) // 8 and len(idxs[0]) == len(idxs[1]) == 4 * len(shards[0])
    assert not set(idxs[0]) & set(idxs[1])


def test_auto_keeps_fastais_loaders_off_cuda_and_settings_are_checked(tiny):
    _, prepared = tiny
    assert resolve_placement("auto", "cpu", 10**6) == "fastai" and resolve_placement("off", "cuda", 1) == "fastai"
    assert resolve_placement("host", "cpu", 1) == "host"
    dls = training_dataloaders(prepared.cache, prepared.split, STATS, 4, "cpu")
    assert dls.train.placement == "fastai" and type(dls.train).__name__ == "TfmdDL"
    with pytest.raises(ValueError, match="precision must be one of"):
        TrainSettings(precision="fp8")
    with pytest.raises(ValueError, match="data_on_device must be one of"):
        TrainSettings(data_on_device="gpu")
    args = build_parser().parse_args(["train", "--profile", "smoke", "--precision", "bf16", "--compile",
                                      "--data-on-device", "host", "--no-cudnn-benchmark"])
    s = train_settings(args)
    assert (s.precision, s.compile, s.data_on_device, s.cudnn_benchmark) == ("bf16", True, "host", False)
    assert train_settings(build_parser().parse_args(["train", "--profile", "smoke"])) == get_profile("smoke").train


def test_device_losses_are_fastais_on_a_cpu():
    """The Recorder's losses kept on the device: the same arithmetic as fastai's, so the same history on a CPU."""
    from types import SimpleNamespace

    from fastai.learner import AvgLoss, AvgSmoothLoss
    mine, theirs = (callbacks.DeviceAvgLoss(), callbacks.DeviceSmoothLoss()), (AvgLoss(), AvgSmoothLoss())
    for m in (*mine, *theirs):
        m.reset()
    for i in range(7):
        learn = SimpleNamespace(loss=torch.rand(()) * 3, yb=(torch.zeros(3 + i % 2, 2),), to_detach=lambda t: t.detach())
        for m in (*mine, *theirs):
            m.accumulate(learn)
    assert torch.equal(mine[0].value, theirs[0].value) and torch.equal(mine[1].value, theirs[1].value)


# --- the training loop ---------------------------------------------------------------------------------------

def test_training_on_device_batches_resumes_after_a_kill(tiny, tmp_path, killed_after_first_epoch):
    """As tests/test_training.py's kill test, with batches gathered and augmented on the device: the resumed
    run ends with the history and weights of the uninterrupted one. (The host placement yields the same
    batches: test_same_seed_same_batches_on_either_placement.)"""
    profile, prepared = tiny
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


def test_bf16_background_checkpoints_and_their_cost(tiny, tmp_path):
    """bf16 autocast on a CPU; checkpoints are on disk when train_model returns; their cost is reported."""
    profile, prepared = tiny
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


def test_compile_is_done_per_phase(tiny, tmp_path, monkeypatch):
    """Phase 1 compiles the frozen model (its encoder's weights do not train, its BatchNorm does), phase 2
    compiles again, with the encoder trainable, and the encoder then trains."""
    profile, prepared = tiny
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
def test_compiled_real_model_trains(tiny, tmp_path, monkeypatch):
    profile, prepared = tiny
    monkeypatch.setattr(loop, "COMPILE_BACKEND", "aot_eager")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            folder = loop.train_model(prepared, "extended", replace(profile.train, compile=True), tmp_path,
                                      device="cpu", progress=False)
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

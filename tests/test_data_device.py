"""Batches gathered and augmented from the in-memory cache (data.device): fastai's augmentation given the same
draws, the same batches on either placement and across ranks, the settings that choose the path."""
import numpy as np
import pytest
import torch

from clothparse_lib.cli import build_parser
from clothparse_lib.cli.checks import train_settings
from clothparse_lib.data.augmentation import AUGMENTATION
from clothparse_lib.data.device import TensorBatches, augment, draw_params, resolve_placement
from clothparse_lib.data.loaders import make_dataloaders, training_dataloaders
from clothparse_lib.data.split import split_rows
from clothparse_lib.profiles import TrainSettings, get_profile
from clothparse_lib.training import callbacks

STATS = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def batch_of(prepared, n=6):
    rows = split_rows(prepared.cache, prepared.split, "train")[:n]
    images, masks = prepared.cache.batch(rows)
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div(255)
    return x, torch.from_numpy(masks.astype(np.int64))


def neutral(n):
    return {"flip": torch.zeros(n, dtype=torch.bool), "angle": torch.zeros(n), "brightness": torch.full((n,), 0.5),
            "contrast": torch.ones(n)}


# --- the on-device augmentation ------------------------------------------------------------------------------

def test_augment_is_fastais_augmentation_given_the_same_draws(tiny_data):
    """Flip + rotation (one resampling, fastai's aspect correction), brightness then contrast in logit space:
    fastai's aug_transforms with the same draws give the same batch."""
    from fastai.torch_core import TensorImage, TensorMask
    from fastai.vision.augment import Brightness, Contrast, Flip, Rotate, setup_aug_tfms

    _, prepared = tiny_data
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


def test_augment_shapes_dtypes_and_masks_stay_class_indices(tiny_data):
    _, prepared = tiny_data
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


def test_lighting_changes_images_not_masks(tiny_data):
    _, prepared = tiny_data
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


def test_same_seed_same_batches_on_either_placement(tiny_data):
    _, prepared = tiny_data
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


def test_valid_batches_are_the_fastai_loaders(tiny_data):
    _, prepared = tiny_data
    dls = make_dataloaders(prepared.cache, prepared.split, STATS, 4, "cpu")
    fastai = [(x.as_subclass(torch.Tensor), y.as_subclass(torch.Tensor)) for x, y in dls.valid]
    assert same(epoch(loader(prepared, "valid")), fastai)
    assert same(epoch(loader(prepared, "valid", placement="host")), fastai)


def test_ranks_share_every_global_batch(tiny_data):
    """Data-parallel: rank r of 2 yields its half of each batch the single process would draw at twice the
    batch size (the same order, the same augmentation); the fastai path shards alike."""
    _, prepared = tiny_data
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


def test_auto_keeps_fastais_loaders_off_cuda_and_settings_are_checked(tiny_data):
    _, prepared = tiny_data
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

"""Training batches gathered and augmented on the training device, from the training-resolution cache.

The fastai DataLoader (:mod:`loaders`) builds every batch item by item in Python and augments it with
fastai's batch transforms; on a GPU that costs more than the model's step. :class:`TensorBatches` is its
drop-in replacement for the training loop (an iterable of ``(images, masks)`` with ``len``, ``device``,
``n_inp`` and ``rng``, as fastai's ``Learner`` uses them), with the same split and augmentation semantics:

* the cache's rows of one split as uint8 tensors, either **on the device** (``placement="device"``: the
  whole split in GPU memory, ~150 MB for CCP at 288x192) or **on the host** (``"host"``: read from the
  cache's memmaps by a prefetching thread into pinned memory and copied to the device on a side stream
  ahead of use, for data sets that do not fit);
* per batch: one gather of rows, uint8 -> float / 255, the paper's augmentation for the whole batch at once
  (:func:`augment`: per-sample horizontal flip, rotation and lighting, one ``grid_sample`` for the images
  and one nearest-neighbour ``grid_sample`` for the masks, which so stay class indices; zeros rotated in:
  black image, background mask), then the encoder's normalisation;
* randomness: one CPU ``torch.Generator`` seeded with the training's seed draws, at the start of every
  epoch, the epoch's order and every sample's augmentation parameters (:func:`draw_params`), copied to the
  device once per epoch. No random number is drawn per batch and nothing is read back to the host, so the
  loop never waits for the device; the same seed gives the same batches on any device and either placement,
  and the generator's state (``rng.getstate()``) is all a checkpoint needs to resume exactly;
* data-parallel training (``world > 1``): every rank draws the same epoch plan, cuts it into global batches
  of ``batch_size * world`` samples and takes its own ``batch_size`` of each.

The distributions are fastai's :func:`aug_transforms` with :data:`augmentation.AUGMENTATION` (flip p 0.5;
rotation uniform +-10 degrees with p 0.75; brightness and contrast in logit space, each with p 0.75,
+-10 %); ``tests/test_data_device.py`` checks :func:`augment` against fastai's transforms given the same
draws. The draws themselves come from another generator than fastai's, so this path trains on other
(equally distributed) augmentations than the fastai DataLoader: it is an option
(``TrainSettings.data_on_device``), the default on CUDA only.
"""
from __future__ import annotations

import math
import queue
import threading

import numpy as np
import torch
import torch.nn.functional as F

from .augmentation import AUGMENTATION
from .cache import Cache

__all__ = ["PLACEMENTS", "FIT_FRACTION", "draw_params", "affine_theta", "augment", "TorchRNG", "TensorBatches",
           "resolve_placement"]


PLACEMENTS = ("device", "host")
FIT_FRACTION = 0.25  # "auto": the split's tensors on the GPU when they take at most this share of its free memory


def draw_params(n: int, generator: torch.Generator, augmentation: dict) -> dict[str, torch.Tensor]:
    """Augmentation parameters of ``n`` samples, drawn on the CPU in a fixed order (fastai's distributions).

    ``flip`` (bool), ``angle`` (degrees, 0 where no rotation), ``brightness`` (the lighting change in (0, 1),
    0.5 where none) and ``contrast`` (multiplier, 1 where none)."""
    a = augmentation

    def uniform(lo, hi):
        return torch.rand(n, generator=generator, dtype=torch.float32) * (hi - lo) + lo

    def applied(p):
        return torch.rand(n, generator=generator, dtype=torch.float32) < p

    flip = applied(0.5) if a["do_flip"] else torch.zeros(n, dtype=torch.bool)
    angle = uniform(-a["max_rotate"], a["max_rotate"]) * applied(a["p_affine"])
    m = a["max_lighting"]
    brightness = torch.where(applied(a["p_lighting"]), uniform(0.5 * (1 - m), 0.5 * (1 + m)), torch.tensor(0.5))
    contrast = torch.where(applied(a["p_lighting"]), torch.exp(uniform(math.log(1 - m), -math.log(1 - m))),
                           torch.tensor(1.0))
    return {"flip": flip, "angle": angle, "brightness": brightness, "contrast": contrast}


def affine_theta(flip: torch.Tensor, angle: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, 2, 3) ``affine_grid`` matrices of a flip then a rotation, as fastai composes them (``_prepare_mat``:
    the rotation corrected for the image's aspect ratio in normalised coordinates)."""
    h, w = size
    theta = angle.float() * (math.pi / 180)
    cos, sin, sign = theta.cos(), theta.sin(), 1 - 2 * flip.float()
    zero = torch.zeros_like(cos)
    row0 = torch.stack([sign * cos, sign * sin * (h / w), zero], 1)
    row1 = torch.stack([-sin * (w / h), cos, zero], 1)
    return torch.stack([row0, row1], 1)


def _logit(x: torch.Tensor) -> torch.Tensor:  # fastai's, clamped
    x = x.clamp(1e-7, 1 - 1e-7)
    return -(1 / x - 1).log()


def augment(images: torch.Tensor, masks: torch.Tensor, params: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """The paper's augmentation of a batch: ``images`` (B, 3, H, W) float in [0, 1], ``masks`` (B, H, W)
    integer class indices, ``params`` as :func:`draw_params` gives them (on the batch's device).

    Flip and rotation move image and mask alike (bilinear / nearest, zeros outside); brightness and
    contrast change the images only. Returns new tensors (masks int64)."""
    b, _, h, w = images.shape
    theta = affine_theta(params["flip"], params["angle"], (h, w)).to(images.dtype)
    grid = F.affine_grid(theta, [b, 1, h, w], align_corners=True)
    images = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    masks = F.grid_sample(masks[:, None].to(images.dtype), grid, mode="nearest", padding_mode="zeros",
                          align_corners=True)[:, 0].long()
    change = _logit(params["brightness"].to(images.dtype))[:, None, None, None]
    factor = params["contrast"].to(images.dtype)[:, None, None, None]
    images = torch.sigmoid((_logit(images) + change) * factor)
    return images, masks


class TorchRNG:
    """A ``torch.Generator`` with the ``seed`` / ``getstate`` / ``setstate`` of ``random.Random`` (what the loop
    saves in a checkpoint as the data loader's generator)."""

    def __init__(self, seed: int = 0):
        self.generator = torch.Generator()
        self.seed(seed)

    def seed(self, seed: int) -> None:
        self.generator.manual_seed(int(seed))

    def getstate(self) -> torch.Tensor:
        return self.generator.get_state()

    def setstate(self, state) -> None:
        self.generator.set_state(torch.as_tensor(state, dtype=torch.uint8).cpu())


class TensorBatches:
    """Batches of one split of a cache for fastai's ``Learner`` (module docstring).

    ``rows``: the split's row numbers in the cache; ``stats``: the encoder's (mean, std) for [0, 1] RGB;
    ``shuffle`` (a new order every epoch) and ``augment`` for training, neither for validation;
    ``drop_last``: whole batches only (training). ``rank``/``world``: this process's share of data-parallel
    training."""

    n_inp = 1

    def __init__(self, cache: Cache, rows, stats: tuple, batch_size: int, device, placement: str = "device",
                 shuffle: bool = False, augment: bool = False, drop_last: bool = False, seed: int = 0,
                 augmentation: dict | None = None, rank: int = 0, world: int = 1, prefetch: int = 2):
        if placement not in PLACEMENTS:
            raise ValueError(f"placement must be one of {', '.join(PLACEMENTS)}, got {placement!r}")
        self.cache, self.rows = cache, np.asarray(rows, dtype=np.int64)
        self.bs, self.shuffle, self.augment, self.drop_last = batch_size, shuffle, augment, drop_last
        self.placement, self.rank, self.world, self.prefetch = placement, rank, world, prefetch
        self.augmentation = dict(AUGMENTATION if augmentation is None else augmentation)
        self.stats = stats
        self.rng = TorchRNG(seed)
        self.n = len(self.rows)
        self._device = None
        self.to(device)

    # --- what fastai's Learner and DataLoaders use ---------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self._device

    def to(self, device) -> "TensorBatches":
        device = torch.device(device) if device is not None else torch.device("cpu")
        if device.type == "cuda" and device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        if device == self._device:
            return self
        self._device = device
        mean, std = (torch.tensor(v, dtype=torch.float32, device=device).view(1, -1, 1, 1) for v in self.stats)
        self.mean, self.std = mean, std
        self.cuda = device.type == "cuda"
        self.memory_format = torch.channels_last if self.cuda else torch.contiguous_format
        if self.placement == "device":  # the split's rows, once, as uint8 on the device
            self.images = torch.from_numpy(np.ascontiguousarray(self.cache.images[self.rows])).to(device)
            self.masks = torch.from_numpy(np.ascontiguousarray(self.cache.masks[self.rows])).to(device)
        else:
            self.images = self.masks = None  # read from the memmaps batch by batch
        return self

    def __len__(self) -> int:
        step = self.bs * self.world
        if self.drop_last:
            return self.n // step
        return math.ceil(self.n / step)

    def nbytes(self) -> int:
        h, w = self.cache.size
        return self.n * h * w * 4

    # --- iteration -----------------------------------------------------------------------------------------
    def epoch_plan(self) -> tuple[torch.Tensor, dict | None]:
        """This epoch's order of the split's samples (positions 0..n-1) and, when augmenting, every slot's
        parameters: drawn from :attr:`rng` on the CPU (the same on every rank)."""
        g = self.rng.generator
        order = torch.randperm(self.n, generator=g) if self.shuffle else torch.arange(self.n)
        params = draw_params(self.n, g, self.augmentation) if self.augment else None
        return order, params

    def _slices(self):
        step = self.bs * self.world
        for i in range(len(self)):
            start = i * step + self.rank * self.bs
            yield slice(start, min(start + self.bs, self.n))

    def __iter__(self):
        order, params = self.epoch_plan()
        if params is not None:
            params = {k: v.to(self._device, non_blocking=True) for k, v in params.items()}
        gathered = self._on_device(order) if self.placement == "device" else self._from_host(order)
        for sl, x, y in gathered:
            yield self.finish(x, y, None if params is None else {k: v[sl] for k, v in params.items()})

    def finish(self, x: torch.Tensor, y: torch.Tensor, params: dict | None):
        """uint8 (B, H, W, 3) images and (B, H, W) masks on the device -> the model's inputs and targets."""
        x = x.permute(0, 3, 1, 2).float().div_(255)
        if params is not None:
            x, y = augment(x, y, params)
        x = ((x - self.mean) / self.std).contiguous(memory_format=self.memory_format)
        return x, y.long()

    def _on_device(self, order: torch.Tensor):
        order = order.to(self._device, non_blocking=True)
        for sl in self._slices():
            idx = order[sl]
            yield sl, self.images.index_select(0, idx), self.masks.index_select(0, idx)

    def _gather_host(self, positions: np.ndarray):
        rows = self.rows[positions]
        x, y = (torch.from_numpy(np.ascontiguousarray(a[rows])) for a in (self.cache.images, self.cache.masks))
        if self.cuda:
            x, y = x.pin_memory(), y.pin_memory()
        return x, y

    def _from_host(self, order: torch.Tensor):
        """Rows read from the memmaps by a thread ``prefetch`` batches ahead, into pinned memory, and copied to
        the device on a side stream one batch ahead of their use."""
        order = order.numpy()
        slices = list(self._slices())
        q: queue.Queue = queue.Queue(maxsize=max(1, self.prefetch))
        stop = threading.Event()

        def produce():
            try:
                for sl in slices:
                    item = self._gather_host(order[sl])
                    while not stop.is_set():
                        try:
                            q.put(item, timeout=0.1)
                            break
                        except queue.Full:
                            continue
                    if stop.is_set():
                        return
            except BaseException as e:  # handed to the consumer, raised there
                q.put(e)

        thread = threading.Thread(target=produce, name="clothparse-prefetch", daemon=True)
        thread.start()
        stream = torch.cuda.Stream(self._device) if self.cuda else None

        def fetch():
            item = q.get()
            if isinstance(item, BaseException):
                raise item
            if stream is None:
                return tuple(t.to(self._device) for t in item)
            with torch.cuda.stream(stream):
                return tuple(t.to(self._device, non_blocking=True) for t in item)

        try:
            ahead = fetch() if slices else None
            for i in range(len(slices)):
                current = ahead
                if stream is not None:
                    torch.cuda.current_stream(self._device).wait_stream(stream)
                    for t in current:
                        t.record_stream(torch.cuda.current_stream(self._device))
                ahead = fetch() if i + 1 < len(slices) else None
                yield (slices[i], *current)
        finally:
            stop.set()
            while thread.is_alive():
                try:
                    q.get(timeout=0.05)
                except queue.Empty:
                    pass
            thread.join()


def resolve_placement(setting: str, device, nbytes: int) -> str:
    """Where training batches come from: ``"fastai"`` (the fastai DataLoader), ``"device"`` or ``"host"``
    (:class:`TensorBatches`), for ``TrainSettings.data_on_device`` = ``"off"``, ``"device"``, ``"host"`` or
    ``"auto"`` (CUDA: ``"device"`` when the train and valid tensors, ``nbytes``, take at most
    :data:`FIT_FRACTION` of the GPU's free memory, else ``"host"``; any other device: ``"fastai"``)."""
    if setting == "off":
        return "fastai"
    if setting in PLACEMENTS:
        return setting
    if setting != "auto":
        raise ValueError(f"data_on_device must be auto, device, host or off, got {setting!r}")
    device = torch.device(device) if device is not None else None
    if device is None or device.type != "cuda":
        return "fastai"
    free, _ = torch.cuda.mem_get_info(device)
    return "device" if nbytes <= FIT_FRACTION * free else "host"

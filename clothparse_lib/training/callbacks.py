"""fastai callbacks and metrics of the training loop that keep each batch on the device: the validation IoU, the
Recorder's losses, mixed precision on any device, a progress bar that reads the loss only now and then, and the stop
of a training whose loss is no longer finite."""
from __future__ import annotations

import torch
from fastai.callback.core import Callback, CancelStepException
from fastai.callback.fp16 import MixedPrecision
from fastai.callback.progress import ProgressCallback
from fastai.learner import AvgLoss, AvgSmoothLoss, Metric
from fastai.torch_core import find_bs

from ..metrics import confusion_matrix, segmentation_scores

__all__ = ["ValidIoU", "DeviceAvgLoss", "DeviceSmoothLoss", "DeviceMixedPrecision", "ProgressEvery", "NonFiniteLoss",
           "StopOnNonFiniteLoss"]


class ValidIoU(Metric):
    """IoU excl. bg accumulated over the whole validation set (see :mod:`clothparse_lib.metrics`)."""

    def reset(self):
        self.conf = 0

    def accumulate(self, learn):  # on the device: no sync per batch
        self.conf = self.conf + confusion_matrix(learn.pred.seg.argmax(1), learn.yb[0])

    @property
    def value(self):
        return segmentation_scores(self.conf.cpu().numpy())["iou_excl_bg"] if torch.is_tensor(self.conf) else None

    @property
    def name(self):
        return "iou_excl_bg"


class DeviceAvgLoss(AvgLoss):
    """fastai's validation loss, accumulated on the device (fastai's moves every batch's loss to the CPU: a
    host synchronisation per batch on a GPU). The same arithmetic: on a CPU the same numbers."""

    def accumulate(self, learn):
        bs = find_bs(learn.yb)
        self.total += learn.loss.mean().detach() * bs
        self.count += bs


class DeviceSmoothLoss(AvgSmoothLoss):
    """fastai's smoothed training loss (history's ``train_loss``), kept on the device."""

    def accumulate(self, learn):
        self.count += 1
        loss = learn.loss.mean().detach()
        self.val = torch.lerp(loss, self.val.to(loss.device), self.beta)


class DeviceMixedPrecision(MixedPrecision):
    """fastai's mixed precision on the learner's device type (fastai's autocasts on CUDA only), fp16 (with the
    loss scaler) or bf16 (without); without fastai's per-step read of the loss scale. (Its name is not
    ``Autocast``: fastai exposes a callback as a learner attribute named after its class, and the ``autocast``
    attribute it sets would then shadow it, with a warning at every fit.)"""

    def __init__(self, precision: str, device_type: str):
        super().__init__(amp_mode=precision)
        self.device_type = device_type

    def before_fit(self):
        bf16 = self.amp_mode.value == "bf16"
        if bf16 and self.device_type == "cuda" and not torch.cuda.is_bf16_supported():
            raise ValueError("this GPU does not support bfloat16: use precision fp16")
        dtype = torch.bfloat16 if bf16 else torch.float16
        self.kwargs["enabled"] = not bf16
        self.autocast = torch.autocast(self.device_type, dtype=dtype)
        self.learn.scaler, self.scales = torch.amp.GradScaler(self.device_type, **self.kwargs), []

    def before_step(self):
        self.skipped = True
        self.scaler.step(self)  # calls self.step unless the gradients overflowed
        if self.skipped:
            raise CancelStepException()


class ProgressEvery(ProgressCallback):
    """fastai's progress bar, showing the smoothed loss every 25 batches rather than every batch (reading it
    waits for the GPU)."""

    def after_batch(self):
        self.pbar.update(self.iter + 1)
        if hasattr(self, "smooth_loss") and (self.iter + 1) % 25 == 0:
            self.pbar.comment = f"{self.smooth_loss.item():.4f}"


class NonFiniteLoss(RuntimeError):
    """The training loss became NaN or infinite, said in one line (whatever fastai prepends to a callback's
    exception's ``args``)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class StopOnNonFiniteLoss(Callback):
    """Stop a training whose loss becomes NaN or infinite, before the epoch's checkpoint is written (so the last
    good ``last.pt`` stays and the model is not recorded as finished), with :class:`NonFiniteLoss` in one line.
    The flag is kept on the device and read every ``every`` batches on a GPU (every batch on a CPU, where reading
    costs nothing) and before the epoch's checkpoint."""

    order = 80  # before the Checkpointer (90) writes the epoch

    def __init__(self, every: int = 25):
        self.every, self.nonfinite = every, None  # (an epoch skipped on resuming has an after_epoch, no before_epoch)

    def before_epoch(self):
        self.nonfinite = None

    def after_loss(self):
        if not self.training:
            return
        bad = ~torch.isfinite(self.learn.loss.detach()).all()
        self.nonfinite = bad if self.nonfinite is None else self.nonfinite | bad
        if self.learn.loss.device.type == "cpu" or (self.iter + 1) % self.every == 0:
            self._check()

    def before_validate(self):
        self._check()

    def after_epoch(self):
        self._check()

    def _check(self):
        if self.nonfinite is not None and bool(self.nonfinite):
            raise NonFiniteLoss(f"the training loss became NaN or infinite in epoch {self.epoch + 1} (learning rate "
                                f"{self.opt.hypers[-1]['lr']:.3g}): stopped; the last good checkpoint is kept, the "
                                "model is not finished (try a lower learning rate, or precision fp32)")

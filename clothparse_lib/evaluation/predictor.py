"""The one inference path: images in, a model's outputs (or masks) out, with what is known about the garments.

:class:`Predictor` resizes RGB images to the model's size (bilinear, as the photo is squashed in training),
scales and normalises them as the model's encoder expects, injects a class prior through the ClassBranch
(:mod:`models.prior`; refused for models whose ClassBranch does not feed the segmentation), and runs the model in
eval mode, without gradients, in batches. :class:`parsing.Parser`, the galleries and :func:`scores.evaluate` use it.
"""
from __future__ import annotations

import contextlib

import numpy as np
import torch

from ..data.base import fit_images
from ..models import ModelOutput, make_class_prior, require_prior_input

__all__ = ["Predictor", "eval_mode"]


@contextlib.contextmanager
def eval_mode(model: torch.nn.Module):
    """``model`` in eval mode and without gradients; its former mode is restored afterwards."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        model.train(was_training)


class Predictor:
    """``model``'s outputs for uint8 RGB images; ``device``: the model's unless given, ``batch_size`` per forward."""

    def __init__(self, model: torch.nn.Module, device=None, batch_size: int = 16):
        self.model, self.batch_size = model, batch_size
        self.device = torch.device(device) if device is not None else next(model.parameters()).device
        self.size = tuple(model.img_size)
        self.mean, self.std = (torch.tensor(v, device=self.device)[:, None, None] for v in model.normalization)

    def inputs(self, images: np.ndarray) -> torch.Tensor:
        """uint8 RGB images (N, H, W, 3), or one (H, W, 3), of any size -> the model's input (N, 3, h, w) on the
        device: resized to the model's size where it differs, scaled to [0, 1] and normalised."""
        images = fit_images(images[None] if images.ndim == 3 else images, self.size)
        x = torch.from_numpy(np.ascontiguousarray(images)).to(self.device).permute(0, 3, 1, 2).contiguous()
        return (x.float().div(255) - self.mean) / self.std

    def prior(self, n: int, present=(), absent=(), class_prior=None) -> torch.Tensor | None:
        """The (n, 8) class prior of ``present``/``absent`` garment names over ``class_prior`` ((8,) or (n, 8), NaN =
        unknown); None when nothing is known. Refused (``ValueError``) for a model without a prior input."""
        if not present and not absent and class_prior is None:
            return None
        require_prior_input(self.model)
        return make_class_prior(present, absent, n, base=class_prior, device=self.device)

    def run(self, x: torch.Tensor, present=(), absent=(), class_prior=None) -> ModelOutput:
        """The model's output for an input batch ``x`` (:meth:`inputs`), with known garments injected."""
        return self._forward(x, self.prior(len(x), present, absent, class_prior))

    def _forward(self, x: torch.Tensor, prior: torch.Tensor | None) -> ModelOutput:
        with eval_mode(self.model):
            return self.model(x) if prior is None else self.model(x, class_prior=prior)

    def batches(self, images: np.ndarray, present=(), absent=(), class_prior=None):
        """The model's output per batch of ``images`` (:meth:`inputs`), known garments injected (:meth:`prior`)."""
        images = images[None] if images.ndim == 3 else images
        prior = self.prior(len(images), present, absent, class_prior)
        for start in range(0, len(images), self.batch_size):
            rows = slice(start, start + self.batch_size)
            yield self._forward(self.inputs(images[rows]), None if prior is None else prior[rows])

    def __call__(self, images: np.ndarray, present=(), absent=(), class_prior=None) -> ModelOutput:
        """The model's output for ``images`` (see :meth:`batches`), the batches concatenated."""
        outs = [out.heads() for out in self.batches(images, present, absent, class_prior)]
        return ModelOutput([None if parts[0] is None else torch.cat(parts) for parts in zip(*outs)])

    def logits(self, images: np.ndarray, class_prior=None) -> tuple[np.ndarray, np.ndarray | None]:
        """The segmentation and ClassBranch logits of ``images`` (see :meth:`batches`) as float32 arrays (None: no
        ClassBranch): the torch backend of ``parsing.Parser``, as ``runtime.OnnxModel`` is its ONNX one."""
        out = self(images, class_prior=class_prior)
        return out.seg.float().cpu().numpy(), None if out.cls is None else out.cls.float().cpu().numpy()

    def masks(self, images: np.ndarray, present=(), absent=(), class_prior=None) -> np.ndarray:
        """Class-index masks (N, h, w) uint8 at the model's size: the argmax of the segmentation, batch by batch."""
        return np.concatenate([out.seg.argmax(1).to(torch.uint8).cpu().numpy()
                               for out in self.batches(images, present, absent, class_prior)])

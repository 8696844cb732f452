"""Parse a photo with a trained model, optionally injecting what you know about it, and list its garments.

    parser = Parser.from_onnx("extended.onnx")  # a model exported by ``clothparse export``: onnxruntime, no torch
    parser = Parser.default()  # the model that ships with the package (inference.shipped)
    parser = evaluation.parsing.Parser.from_checkpoint("runs/demo/models/extended-refined/best.pt")  # torch
    result = parser.parse("photo.jpg", present=["skirt"], absent=["dress"])
    result.mask            # HxW uint8 class indices at the photo's own size
    result.garments        # name, pixel share, box, presence probability, dominant colour

A photo file is read as a viewer displays it (EXIF orientation applied, 16-bit scaled to 8 bits:
:func:`data.base.read_rgb`), and the results are in that orientation. A backend gives the model's logits for the
photo: :class:`evaluation.predictor.Predictor` (torch) or :class:`runtime.OnnxModel` (onnxruntime on the CPU). Both
squash the photo to the model's training size (:func:`data.base.fit_images`, as in training) and inject the known facts
through the ClassBranch (the paper's injection; :func:`taxonomy.known_garments`). The rest is one path for both
(:func:`parse_logits`): the segmentation logits are resized back to the photo's size (bilinear,
:func:`resize_logits`) before the per-pixel argmax, and a garment declared absent is in addition excluded from
the argmax, so that it can never be reported (the injection alone only discourages it).

This package imports neither torch nor the model code: the ONNX backend parses photos without them; the torch
backend (:class:`evaluation.parsing.Parser`) adds :meth:`from_checkpoint` above the model code.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from ..data.base import read_rgb, region_box
from ..taxonomy import CLASS_INDEX, GARMENTS, colorize, known_garments, parse_classes

__all__ = ["COLOR_NAMES", "Garment", "Parsing", "dominant_color", "resize_logits",
           "parse_logits", "Backend", "Parser"]


# A small named palette for colour tags (RGB).
COLOR_NAMES = {
    "black": (20, 20, 20), "white": (240, 240, 240), "grey": (128, 128, 128), "red": (200, 30, 40),
    "orange": (240, 130, 30), "yellow": (240, 220, 50), "green": (40, 150, 60), "blue": (40, 90, 200),
    "navy": (25, 35, 80), "purple": (120, 50, 150), "pink": (240, 150, 180), "brown": (110, 70, 40),
    "beige": (215, 195, 160),
}


@dataclass
class Garment:
    name: str
    pixel_share: float  # share of the photo's pixels
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels (x1, y1 exclusive)
    presence_probability: float | None  # ClassBranch sigmoid (after any injected fact); None without a branch
    dominant_color: str  # hex
    color_name: str


@dataclass
class Parsing:
    mask: np.ndarray
    garments: list[Garment]

    def to_dict(self) -> dict:
        return {"height": int(self.mask.shape[0]), "width": int(self.mask.shape[1]),
                "garments": [asdict(g) for g in self.garments]}

    def overlay(self, image: np.ndarray, alpha: float = 0.5) -> np.ndarray:
        """The photo with garments tinted in their class colours (background untouched)."""
        tint = colorize(self.mask).astype(np.float32)
        out = image.astype(np.float32)
        fg = self.mask > 0
        out[fg] = (1 - alpha) * out[fg] + alpha * tint[fg]
        return out.round().astype(np.uint8)


def dominant_color(pixels: np.ndarray) -> tuple[str, str]:
    """Most frequent colour (8 levels per channel; mean RGB of that bin) as hex, and its nearest name."""
    bins = (pixels // 32).astype(np.int64)
    key = bins[:, 0] * 64 + bins[:, 1] * 8 + bins[:, 2]
    top = np.bincount(key).argmax()
    rgb = pixels[key == top].mean(0).round().astype(int)
    names = list(COLOR_NAMES)
    dist = ((np.array([COLOR_NAMES[n] for n in names]) - rgb) ** 2).sum(1)
    return "#{:02x}{:02x}{:02x}".format(*rgb), names[int(dist.argmin())]


def _linear_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source rows (or columns) and weights of a bilinear resize from ``n_in`` to ``n_out``: half-pixel centres,
    clamped at the edges (torch's ``interpolate(mode="bilinear", align_corners=False)``)."""
    src = np.maximum((np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5, 0)
    i0 = np.minimum(src.astype(np.int64), n_in - 1)
    return i0, np.minimum(i0 + 1, n_in - 1), (src - i0).astype(np.float32)


def resize_logits(seg: np.ndarray, size: tuple[int, int], rows: int = 256) -> np.ndarray:
    """(C, h, w) logits resized to ``size`` (H, W), bilinear as torch's ``interpolate(align_corners=False)``:
    a new float32 (C, H, W) array, computed ``rows`` output rows at a time (a phone photo's intermediates stay small)."""
    seg = np.asarray(seg, dtype=np.float32)
    (h, w), (height, width) = seg.shape[-2:], size
    y0, y1, wy = _linear_taps(h, height)
    x0, x1, wx = _linear_taps(w, width)
    out = np.empty((seg.shape[0], height, width), np.float32)
    for r in range(0, height, rows):
        part = slice(r, r + rows)
        a = seg[:, y0[part]] * (1 - wy[part, None]) + seg[:, y1[part]] * wy[part, None]  # (C, rows, w)
        out[:, part] = a[:, :, x0] * (1 - wx) + a[:, :, x1] * wx
    return out


def parse_logits(image: np.ndarray, seg: np.ndarray, cls: np.ndarray | None = None, absent=()) -> Parsing:
    """The parsing of ``image`` (H, W, 3) uint8 from a model's logits for it: ``seg`` (C, h, w) at the model's size,
    ``cls`` (8,) ClassBranch logits (None: no branch). The logits are resized to the photo (:func:`resize_logits`),
    the ``absent`` garments excluded from the argmax, and each garment found listed with its pixel share, box,
    presence probability (sigmoid of ``cls``) and dominant colour. Both backends of :class:`Parser` end here."""
    left_out = [CLASS_INDEX[g] for g in parse_classes(absent)]
    kept = [c for c in range(seg.shape[0]) if c not in left_out]  # (an absent garment's logits may be -inf: gated)
    full = np.full((seg.shape[0], *image.shape[:2]), -np.inf, np.float32)
    full[kept] = resize_logits(np.asarray(seg)[kept], image.shape[:2])
    mask = full.argmax(0).astype(np.uint8)
    probs = None
    if cls is not None:
        with np.errstate(over="ignore"):  # a logit of -inf (an absent garment's gate) is probability 0
            probs = 1 / (1 + np.exp(-np.asarray(cls, dtype=np.float32)))
    garments = []
    for g in GARMENTS:
        region = mask == CLASS_INDEX[g]
        if not region.any():
            continue
        hexcol, name = dominant_color(image[region])
        garments.append(Garment(g, float(region.mean()), region_box(region),
                                None if probs is None else float(probs[GARMENTS.index(g)]), hexcol, name))
    return Parsing(mask, garments)


class Backend(Protocol):
    """What :class:`Parser` runs a model through: :class:`evaluation.predictor.Predictor` (torch) or
    :class:`runtime.OnnxModel` (onnxruntime)."""

    def logits(self, images: np.ndarray, class_prior: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """Segmentation logits (N, C, h, w) and ClassBranch logits (N, 8) (None without a branch) of uint8 RGB images
        (N, H, W, 3), the (8,) or (N, 8) ``class_prior`` (NaN = unknown) injected; a prior is a ``ValueError`` for a
        model without a prior input."""


class Parser:
    """Parses photos with a model run by a :class:`Backend` (:meth:`from_onnx`: onnxruntime;
    ``evaluation.parsing.Parser.from_checkpoint``: torch)."""

    def __init__(self, backend: Backend):
        self.backend = backend

    @classmethod
    def from_onnx(cls, path: str | Path, threads: int | None = None) -> "Parser":
        """An ONNX file that ``clothparse export`` wrote (its card beside it), run by onnxruntime on the CPU."""
        from .runtime import OnnxModel

        return cls(OnnxModel(path, threads=threads))

    @classmethod
    def default(cls, threads: int | None = None) -> "Parser":
        """The model that ships with the package (:mod:`shipped`, checked against its card), run by onnxruntime; a
        :class:`shipped.NoShippedModel` (one line: how to make one) while none ships."""
        from .shipped import shipped_model

        return cls.from_onnx(shipped_model()[0], threads=threads)

    def parse(self, image: np.ndarray | str | Path, present=(), absent=()) -> Parsing:
        if not isinstance(image, np.ndarray):
            image = read_rgb(Path(image), str(image))
        present, absent = parse_classes(present), parse_classes(absent)
        prior = known_garments(present, absent) if present or absent else None
        seg, cls = self.backend.logits(image[None], prior)
        return parse_logits(image, seg[0], None if cls is None else cls[0], absent)

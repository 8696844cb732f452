"""Parse a photo with a trained model, optionally injecting what you know about it, and list its garments.

    parser = Parser.from_checkpoint("runs/demo/models/extended-refined/best.pt")  # or ("extended", run_dir="runs/demo")
    result = parser.parse("photo.jpg", present=["skirt"], absent=["dress"])
    result.mask            # HxW uint8 class indices at the photo's own size
    result.garments        # name, pixel share, box, presence probability, dominant colour

A photo file is read as a viewer displays it (EXIF orientation applied, 16-bit scaled to 8 bits:
:func:`data.base.read_rgb`), and the results are in that orientation. The photo goes through the
:class:`predictor.Predictor` (squashed to the model's training size, as in training; known facts injected through
the ClassBranch, the paper's injection), and the segmentation logits are resized back to the photo's size
(bilinear) before the per-pixel argmax. A garment declared absent is in addition excluded from
the argmax, so that it can never be reported (the injection alone only discourages it).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..data.base import read_rgb
from ..data.targets import region_box
from ..models.checkpoints import load_model
from ..taxonomy import CLASS_INDEX, GARMENTS, colorize, parse_classes
from .predictor import Predictor

__all__ = ["COLOR_NAMES", "Garment", "Parsing", "resolve_checkpoint", "dominant_color", "Parser"]


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


def resolve_checkpoint(checkpoint: str | Path, run_dir: str | Path) -> Path:
    """A checkpoint file, or the ``best.pt`` of a model of the run folder ``run_dir``: a folder name of
    ``models/`` (``extended`` as ``clothparse train`` names it, ``plain_unet-base``...), else the model's
    training on the refined data that the book's tables use (``extended`` -> ``models/extended-refined``)."""
    from ..models.checkpoints import tag

    if Path(checkpoint).is_file():
        return Path(checkpoint)
    models = Path(run_dir) / "models"
    for name in (str(checkpoint), tag(str(checkpoint), "refined", 0)):
        if (models / name / "best.pt").is_file():
            return models / name / "best.pt"
    available = sorted(p.parent.name for p in models.glob("*/best.pt"))
    raise FileNotFoundError(f"checkpoint {str(checkpoint)!r} is neither a file nor a model of {models} "
                            f"({'models there: ' + ', '.join(available) if available else 'no trained model there'})")


def dominant_color(pixels: np.ndarray) -> tuple[str, str]:
    """Most frequent colour (8 levels per channel; mean RGB of that bin) as hex, and its nearest name."""
    bins = (pixels // 32).astype(np.int64)
    key = bins[:, 0] * 64 + bins[:, 1] * 8 + bins[:, 2]
    top = np.bincount(key).argmax()
    rgb = pixels[key == top].mean(0).round().astype(int)
    names = list(COLOR_NAMES)
    dist = ((np.array([COLOR_NAMES[n] for n in names]) - rgb) ** 2).sum(1)
    return "#{:02x}{:02x}{:02x}".format(*rgb), names[int(dist.argmin())]


class Parser:
    def __init__(self, model: torch.nn.Module, device=None):
        self.model = model.eval()
        self.predictor = Predictor(model, device)

    @classmethod
    def from_checkpoint(cls, path: str | Path, device=None, run_dir: str | Path | None = None) -> "Parser":
        """``path``: a checkpoint file, or with ``run_dir`` a model trained there (:func:`resolve_checkpoint`)."""
        return cls(load_model(resolve_checkpoint(path, run_dir) if run_dir else path, device), device)

    @torch.no_grad()
    def parse(self, image: np.ndarray | str | Path, present=(), absent=()) -> Parsing:
        if not isinstance(image, np.ndarray):
            image = read_rgb(Path(image), str(image))
        present, absent = parse_classes(present), parse_classes(absent)
        out = self.predictor(image, present, absent)
        seg = F.interpolate(out.seg.float(), size=image.shape[:2], mode="bilinear", align_corners=False)
        for g in absent:
            seg[:, CLASS_INDEX[g]] = -torch.inf
        mask = seg.argmax(1)[0].to(torch.uint8).cpu().numpy()
        probs = None if out.cls is None else torch.sigmoid(out.cls.float())[0].cpu().numpy()
        garments = []
        for g in GARMENTS:
            region = mask == CLASS_INDEX[g]
            if not region.any():
                continue
            hexcol, name = dominant_color(image[region])
            garments.append(Garment(g, float(region.mean()), region_box(region),
                                    None if probs is None else float(probs[GARMENTS.index(g)]), hexcol, name))
        return Parsing(mask, garments)

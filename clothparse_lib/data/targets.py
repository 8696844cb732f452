"""Bounding boxes of mask regions, and the branch targets derived from a batch of class-index masks.

A region's box is (x0, y0, x1, y1) in pixel-edge coordinates: x0/y0 is the left/top edge of its first
pixel, x1/y1 the right/bottom edge of its last pixel (pixel coordinates with exclusive x1/y1,
:func:`base.region_box`). Box targets are those divided by W/H, relative to the image size, in [0, 1],
vectorised on the masks' device: a garment filling the image has box (0, 0, 1, 1); a single pixel at
column i has x0 = i/W, x1 = (i+1)/W. Absent garments get (0, 0, 0, 0).
"""
from __future__ import annotations

import torch

from ..taxonomy import N_CLASSES

__all__ = ["presence_and_boxes", "presence_targets", "box_targets"]


def _check_masks(masks: torch.Tensor) -> torch.Tensor:
    if masks.ndim != 3 or masks.dtype.is_floating_point or masks.dtype == torch.bool:
        raise ValueError(f"masks must be an integer (B, H, W) tensor, got {tuple(masks.shape)} {masks.dtype}")
    return masks


def presence_and_boxes(masks: torch.Tensor, n_classes: int = N_CLASSES) -> tuple[torch.Tensor, torch.Tensor]:
    """(presence (B, G) float 0/1, boxes (B, G, 4) float) for the G = n_classes - 1 garments."""
    _, h, w = _check_masks(masks).shape
    garments = torch.arange(1, n_classes, device=masks.device, dtype=masks.dtype)
    hit = masks[:, None] == garments[None, :, None, None]  # (B, G, H, W) bool
    rows, cols = hit.any(3).to(torch.uint8), hit.any(2).to(torch.uint8)  # (B, G, H), (B, G, W)
    present = rows.amax(2).bool()
    # argmax returns the first maximal index: the first row/column holding the class
    y0, y1 = rows.argmax(2), h - rows.flip(2).argmax(2)
    x0, x1 = cols.argmax(2), w - cols.flip(2).argmax(2)
    boxes = torch.stack([x0 / w, y0 / h, x1 / w, y1 / h], -1) * present[..., None]
    return present.float(), boxes.float()


def presence_targets(masks: torch.Tensor, n_classes: int = N_CLASSES) -> torch.Tensor:
    """(B, G) float: 1 where the garment has at least one pixel in the mask."""
    return presence_and_boxes(masks, n_classes)[0]


def box_targets(masks: torch.Tensor, n_classes: int = N_CLASSES) -> torch.Tensor:
    """(B, G, 4) float (x0, y0, x1, y1) relative boxes, zeros for absent garments (module docstring)."""
    return presence_and_boxes(masks, n_classes)[1]

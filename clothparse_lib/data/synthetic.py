"""Deterministic "paper-doll" images with exact masks: the embedded data of tests and the smoke profile.

Each image shows one annotated person (head, arms, legs in skin tones, and garments: a top or a
dress, an optional overtop, pants / shorts / skirt unless a dress, usually shoes, sometimes a bag)
on a noisy background with clutter. With probability ``p_two`` a second, smaller person stands
beside the first; like the unsegmented bystanders of iMaterialist (paper, Figure 2) that person is
*not* annotated unless ``annotate_bystanders=True``. Sample ``i`` depends only on ``(seed, i)``.

Garments are saturated colours whose hue varies around a hue typical of their class (a red-ish top,
blue-ish pants...), while background and clutter are greyish: a task a small network learns in a few
hundred steps, which is what the smoke profile and the tests need (the real task is CCP's).
"""
from __future__ import annotations

import colorsys
import hashlib
import json
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from ..taxonomy import CLASS_INDEX, PAINT_ORDER
from .base import Sample, region_box

__all__ = ["GENERATOR_VERSION", "CLASS_HUES", "SKIN_TONES", "make_sample", "SyntheticSource"]


GENERATOR_VERSION = 2
CLASS_HUES = {"top": 0, "overtop": 30, "pants": 220, "shorts": 180, "skirt": 280, "dress": 320, "shoe": 60, "bag": 120}
SKIN_TONES = ((241, 194, 167), (224, 172, 105), (198, 134, 66), (141, 85, 36), (255, 219, 172))


def _polygon(shape: tuple[int, int], polys: list[list[tuple[float, float]]], ellipses=()) -> np.ndarray:
    """Boolean raster of the union of polygons and ellipses (bounding boxes)."""
    im = Image.new("L", (shape[1], shape[0]), 0)
    draw = ImageDraw.Draw(im)
    for poly in polys:
        draw.polygon(poly, fill=1)
    for box in ellipses:
        draw.ellipse(box, fill=1)
    return np.asarray(im, dtype=bool)


def _outfit(rng: np.random.Generator) -> list[str]:
    garments = ["dress"] if rng.random() < 0.25 else ["top", str(rng.choice(["pants", "shorts", "skirt"], p=[0.5, 0.2, 0.3]))]
    if rng.random() < 0.35:
        garments.append("overtop")
    if rng.random() < 0.85:
        garments.append("shoe")
    if rng.random() < 0.4:
        garments.append("bag")
    return garments


def _person_layers(shape, cx: float, top: float, h: float, garments: list[str], rng) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Skin raster and one raster per garment for a figure of height h centred at cx."""
    y = lambda f: top + f * h  # noqa: E731 - vertical position as a fraction of the figure height
    x = lambda f: cx + f * h  # noqa: E731 - horizontal offset as a fraction of the figure height
    sh, wa, hip = y(0.16), y(0.45), y(0.52)
    skin = _polygon(shape, [
        [(x(-0.02), y(0.11)), (x(0.02), y(0.11)), (x(0.02), sh), (x(-0.02), sh)],  # neck
        [(x(-0.16), sh), (x(-0.11), sh), (x(-0.20), y(0.50)), (x(-0.25), y(0.49))],  # left arm
        [(x(0.11), sh), (x(0.16), sh), (x(0.25), y(0.49)), (x(0.20), y(0.50))],  # right arm
        [(x(-0.10), hip), (x(-0.01), hip), (x(-0.03), y(0.93)), (x(-0.09), y(0.93))],  # legs
        [(x(0.01), hip), (x(0.10), hip), (x(0.09), y(0.93)), (x(0.03), y(0.93))],
    ], ellipses=[(x(-0.055), y(0.0), x(0.055), y(0.12))])
    leg_l = [(x(-0.12), wa), (x(0.0), wa), (x(-0.02), y(0.93)), (x(-0.10), y(0.93))]
    leg_r = [(x(0.0), wa), (x(0.12), wa), (x(0.10), y(0.93)), (x(0.02), y(0.93))]
    sleeve_l = [(x(-0.15), sh), (x(-0.10), sh), (x(-0.15), y(0.30)), (x(-0.20), y(0.29))]
    sleeve_r = [(x(0.10), sh), (x(0.15), sh), (x(0.20), y(0.29)), (x(0.15), y(0.30))]
    shapes = {
        "top": [[(x(-0.15), sh), (x(0.15), sh), (x(0.12), hip), (x(-0.12), hip)], sleeve_l, sleeve_r],
        "dress": [[(x(-0.14), sh), (x(0.14), sh), (x(0.12), wa), (x(0.22), y(0.72)), (x(-0.22), y(0.72)), (x(-0.12), wa)],
                  sleeve_l, sleeve_r],
        "overtop": [[(x(-0.17), y(0.155)), (x(-0.03), y(0.155)), (x(-0.03), y(0.58)), (x(-0.16), y(0.58))],
                    [(x(0.03), y(0.155)), (x(0.17), y(0.155)), (x(0.16), y(0.58)), (x(0.03), y(0.58))],
                    [(x(-0.17), y(0.155)), (x(-0.11), y(0.155)), (x(-0.21), y(0.46)), (x(-0.26), y(0.45))],
                    [(x(0.11), y(0.155)), (x(0.17), y(0.155)), (x(0.26), y(0.45)), (x(0.21), y(0.46))]],
        "pants": [leg_l, leg_r],
        "shorts": [[(x(-0.12), wa), (x(0.0), wa), (x(-0.01), y(0.64)), (x(-0.12), y(0.64))],
                   [(x(0.0), wa), (x(0.12), wa), (x(0.12), y(0.64)), (x(0.01), y(0.64))]],
        "skirt": [[(x(-0.12), wa), (x(0.12), wa), (x(0.20), y(0.70)), (x(-0.20), y(0.70))]],
    }
    layers = {g: _polygon(shape, shapes[g]) for g in garments if g in shapes}
    if "shoe" in garments:
        layers["shoe"] = _polygon(shape, [], ellipses=[(x(-0.12), y(0.92), x(-0.01), y(0.98)), (x(0.01), y(0.92), x(0.12), y(0.98))])
    if "bag" in garments:
        side = rng.choice([-1, 1])
        bx = x(side * 0.27)
        layers["bag"] = _polygon(shape, [[(bx - 0.07 * h, y(0.46)), (bx + 0.07 * h, y(0.46)), (bx + 0.08 * h, y(0.60)),
                                          (bx - 0.08 * h, y(0.60))]])
    return skin, layers


def _garment_color(garment: str, rng: np.random.Generator) -> np.ndarray:
    """Saturated RGB colour with a hue within 20 degrees of the class's."""
    hue = ((CLASS_HUES[garment] + rng.uniform(-20, 20)) % 360) / 360
    return np.array(colorsys.hsv_to_rgb(hue, rng.uniform(0.6, 1.0), rng.uniform(0.45, 0.95))) * 255


def _grey(rng: np.random.Generator, low: int, high: int) -> np.ndarray:
    """A greyish colour: one brightness plus a small tint."""
    return np.clip(rng.integers(low, high) + rng.integers(-18, 19, size=3), 0, 255)


def _paint(image: np.ndarray, region: np.ndarray, color, rng) -> None:
    noise = rng.normal(0, 8, size=(int(region.sum()), 3))
    image[region] = np.clip(np.asarray(color) + noise, 0, 255).astype(np.uint8)


def make_sample(i: int, seed: int = 0, height: int = 288, width: int = 192, p_two: float = 0.25,
                annotate_bystanders: bool = False) -> Sample:
    """Synthetic sample number ``i``: image, exact mask, and in ``info`` the persons, garments and boxes.

    ``info["boxes"]`` maps each visible garment of the annotated figure(s) to its bounding box
    (x0, y0, x1, y1) in pixels, x1/y1 exclusive, taken from that garment's own raster after
    occlusion by the layers painted over it.
    """
    rng = np.random.default_rng([seed, i])
    shape = (height, width)
    bg = _grey(rng, 40, 230)
    grad = np.linspace(-25, 25, height)[:, None, None]
    image = np.clip(bg + grad + rng.normal(0, 10, size=(height, width, 3)), 0, 255).astype(np.uint8)
    for _ in range(rng.integers(1, 4)):  # clutter: background objects
        x0, y0 = rng.integers(0, width), rng.integers(0, height)
        image[y0:y0 + rng.integers(5, height // 3), x0:x0 + rng.integers(5, width // 3)] = _grey(rng, 0, 256)
    mask = np.zeros(shape, np.uint8)

    two = rng.random() < p_two
    h_main = height * rng.uniform(0.78, 0.95)
    if two:
        side = rng.choice([-1, 1])
        centres = [width * (0.5 + side * 0.2), width * (0.5 - side * 0.27)]
        heights = [h_main, h_main * rng.uniform(0.6, 0.85)]
    else:
        centres, heights = [width * rng.uniform(0.4, 0.6)], [h_main]

    info = {"persons": len(centres), "annotated_persons": 1 + (annotate_bystanders and two), "garments": [], "person_boxes": []}
    boxes_layers: dict[str, np.ndarray] = {}
    # Bystander first (behind), annotated person last (in front).
    for k in reversed(range(len(centres))):
        h, cx = heights[k], centres[k]
        top = (height - h) * rng.uniform(0.2, 0.8)
        garments = _outfit(rng)
        skin, layers = _person_layers(shape, cx, top, h, garments, rng)
        annotated = k == 0 or annotate_bystanders
        _paint(image, skin, SKIN_TONES[rng.integers(len(SKIN_TONES))], rng)
        mask[skin] = 0
        for other in boxes_layers.values():
            other &= ~skin
        person = skin.copy()
        for g in PAINT_ORDER:
            if g not in layers:
                continue
            region = layers[g]
            person |= region
            _paint(image, region, _garment_color(g, rng), rng)
            for other in boxes_layers.values():  # occlusion of garments painted earlier
                other &= ~region
            mask[region] = CLASS_INDEX[g] if annotated else 0
            if annotated:
                boxes_layers[g] = boxes_layers.get(g, np.zeros(shape, bool)) | region
        if annotated:
            info["garments"] = sorted(set(info["garments"]) | set(layers))
        info["person_boxes"].insert(0, region_box(person))
    boxes = {g: region_box(region) for g, region in boxes_layers.items()}
    info["boxes"] = {g: box for g, box in boxes.items() if box is not None}
    return Sample(f"synthetic-{seed}-{i:05d}", image, mask, info)


@dataclass
class SyntheticSource:
    """``n`` synthetic samples generated on demand at ``height`` x ``width``."""

    n: int = 200
    seed: int = 0
    height: int = 288
    width: int = 192
    p_two: float = 0.25
    annotate_bystanders: bool = False
    name: str = "synthetic"

    def ids(self) -> list[str]:
        return [f"synthetic-{self.seed}-{i:05d}" for i in range(self.n)]

    def read(self, image_id: str) -> Sample:
        i = int(image_id.rsplit("-", 1)[1])
        return make_sample(i, self.seed, self.height, self.width, self.p_two, self.annotate_bystanders)

    def fingerprint(self) -> str:
        params = {k: getattr(self, k) for k in ("n", "seed", "height", "width", "p_two", "annotate_bystanders")}
        params["version"] = GENERATOR_VERSION
        return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]

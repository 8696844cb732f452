"""A small data set in Kaggle's iMaterialist 2019 layout, made from synthetic samples.

It exercises the paper profile's data path with no download: each garment becomes one
``train.csv`` row of its iMaterialist category (with attributes in ClassId, as Kaggle writes
them); a garment part (sleeve) overlaps each top and an unmapped accessory (belt) crosses each
lower garment, neither of which may change the mask; every ``jumpsuit_every``-th image also carries
a jumpsuit row and must be excluded.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from ..taxonomy import CLASS_INDEX, IMATERIALIST_CATEGORIES
from .imaterialist import rle_encode
from .synthetic import make_sample

__all__ = ["FIXTURE_CATEGORY", "SLEEVE", "BELT", "JUMPSUIT", "write_imaterialist_fixture", "rle_decode_per_pixel"]


FIXTURE_CATEGORY = {"top": 1, "overtop": 4, "pants": 6, "shorts": 7, "skirt": 8, "dress": 10, "shoe": 23, "bag": 24}
SLEEVE, BELT, JUMPSUIT = 31, 19, 11


def write_imaterialist_fixture(root: Path, n: int = 12, seed: int = 0, height: int = 192, width: int = 128,
                               jumpsuit_every: int = 5) -> dict[str, np.ndarray]:
    """Write ``train.csv``, ``label_descriptions.json`` and ``train/*.jpg`` under ``root``.

    Returns the expected class mask of every image that the reader must keep.
    """
    root = Path(root)
    (root / "train").mkdir(parents=True, exist_ok=True)
    categories = [{"id": i, "name": name, "supercategory": "", "level": 1 if i < 27 else 2}
                  for i, name in enumerate(IMATERIALIST_CATEGORIES)]
    (root / "label_descriptions.json").write_text(json.dumps({"info": {"year": 2019}, "categories": categories,
                                                              "attributes": [{"id": 0, "name": "plain"}]}))
    rows, expected = [], {}
    for i in range(n):
        s = make_sample(i, seed, height, width)
        image_id = f"{seed:02d}{i:06d}.jpg"
        Image.fromarray(s.image).save(root / "train" / image_id, quality=95)
        row = lambda m, cid: {"ImageId": image_id, "EncodedPixels": rle_encode(m), "Height": height,  # noqa: E731
                              "Width": width, "ClassId": cid}
        for g in s.info["garments"]:
            m = s.mask == CLASS_INDEX[g]
            if m.any():
                rows.append(row(m, f"{FIXTURE_CATEGORY[g]}_0"))
        top = s.mask == CLASS_INDEX["top"]
        if top.any():  # a part over the top's left half
            part = top & (np.arange(width)[None, :] < width // 2)
            rows.append(row(part, str(SLEEVE)))
        band = np.zeros_like(top)
        band[int(height * 0.45):int(height * 0.5)] = True  # a belt across the waist
        rows.append(row(band, str(BELT)))
        if jumpsuit_every and i % jumpsuit_every == jumpsuit_every - 1:
            rows.append(row(band, str(JUMPSUIT)))
        else:
            expected[image_id] = s.mask
    pd.DataFrame(rows).to_csv(root / "train.csv", index=False)
    return expected


def rle_decode_per_pixel(rle: str, height: int, width: int) -> np.ndarray:
    """The naive reference for :func:`imaterialist.rle_decode`: Kaggle's column-major runs, one pixel at a time."""
    flat = np.zeros(height * width, bool)
    nums = [int(t) for t in rle.split()]
    for start, length in zip(nums[0::2], nums[1::2]):
        for p in range(start - 1, start - 1 + length):
            flat[p] = True
    return flat.reshape(width, height).T

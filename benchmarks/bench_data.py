"""Data-layer benchmarks: printed figures, measured side by side in one run (not timed tests).

1. RLE decode: the vectorised ``rle_decode`` vs two straightforward Python decoders (one pixel at a
   time; one slice assignment per run) on the same rows, and the projection for iMaterialist's
   ~333k rows. Rows are the garment masks of CCP photos at full size (a stand-in for Kaggle's
   rows, which are not on this machine), or synthetic masks without CCP.
2. A training batch read from the cache vs decoding JPEG + .mat (or generating) each time.
3. Synthetic images per second.

    .venv/bin/python benchmarks/bench_data.py [--data-dir DIR] [--rows 300] [--batch 16]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

from clothparse_lib.data import build_cache, open_source
from clothparse_lib.data.fixtures import rle_decode_per_pixel
from clothparse_lib.data.imaterialist import rle_decode, rle_encode
from clothparse_lib.data.synthetic import SyntheticSource, make_sample

IMATERIALIST_ROWS = 333_415  # rows of Kaggle's train.csv


def decode_per_run(rle: str, h: int, w: int) -> np.ndarray:
    flat = np.zeros(h * w, bool)
    nums = [int(t) for t in rle.split()]
    for start, length in zip(nums[0::2], nums[1::2]):
        flat[start - 1:start - 1 + length] = True
    return flat.reshape(w, h).T


def timed(fn, items, repeat=1) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        for item in items:
            fn(*item)
        best = min(best, time.perf_counter() - t)
    return best


def rle_rows(source, n_rows: int, scale: int = 1) -> list[tuple[str, int, int]]:
    rows = []
    for image_id in source.ids():
        mask = source.read(image_id).mask
        mask = np.repeat(np.repeat(mask, scale, 0), scale, 1)
        for cls in np.unique(mask)[1:]:
            rows.append((rle_encode(mask == cls), *mask.shape))
        if len(rows) >= n_rows:
            return rows[:n_rows]
    return rows


def bench_rle(rows) -> None:
    pixels = np.mean([h * w for _, h, w in rows])
    runs = np.mean([len(r.split()) // 2 for r, _, _ in rows])
    for r, h, w in rows[:20]:
        assert (rle_decode(r, h, w) == decode_per_run(r, h, w)).all()
    t_vec = timed(rle_decode, rows, repeat=3)
    t_run = timed(decode_per_run, rows, repeat=3)
    sub = rows[: max(10, len(rows) // 10)]
    t_pix = timed(rle_decode_per_pixel, sub) * len(rows) / len(sub)
    print(f"\n1. RLE decode, {len(rows)} rows ({pixels / 1e6:.2f} MP images, {runs:.0f} runs per row on average)")
    print(f"   vectorised rle_decode     {len(rows) / t_vec:10.0f} rows/s  -> iMaterialist's {IMATERIALIST_ROWS} rows "
          f"in {IMATERIALIST_ROWS * t_vec / len(rows):6.1f} s")
    print(f"   Python loop per run       {len(rows) / t_run:10.0f} rows/s  (vectorised is {t_run / t_vec:5.1f}x faster)")
    print(f"   Python loop per pixel     {len(rows) / t_pix:10.0f} rows/s  (vectorised is {t_pix / t_vec:5.0f}x faster)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", default=os.environ.get("CLOTHPARSE_DATA_DIR"))
    ap.add_argument("--rows", type=int, default=300)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--size", default="288x192")
    args = ap.parse_args()
    source = open_source("ccp", args.data_dir) if args.data_dir else SyntheticSource(n=400, height=832, width=550)
    print(f"source: {source.name}")

    for scale in (1, 3):  # CCP photos are ~0.46 MP; scale 3 (~4 MP) is closer to many iMaterialist photos
        bench_rle(rle_rows(source, args.rows, scale))

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        cache = build_cache(source, args.size, root=tmp, progress=False)
        t_build = time.perf_counter() - t
        rng = np.random.default_rng(0)
        batches = [rng.choice(len(cache), args.batch, replace=False) for _ in range(20)]
        t_cache = timed(lambda b: cache.batch(np.sort(b)), [(b,) for b in batches], repeat=3)
        ids = cache.index["image_id"].to_numpy()
        t_decode = timed(lambda b: [source.read(i) for i in ids[b]], [(b,) for b in batches[:3]])
        n_cache, n_decode = 20 * args.batch, 3 * args.batch
        print(f"\n2. training batches of {args.batch} at {args.size} ({len(cache)} images cached in {t_build:.1f} s, "
              f"{len(cache) / t_build:.0f} images/s on {len(os.sched_getaffinity(0))} cores)")
        print(f"   from the cache            {n_cache / t_cache:10.0f} images/s")
        print(f"   decoding the source       {n_decode / t_decode:10.0f} images/s  "
              f"(cache is {n_cache / t_cache / (n_decode / t_decode):.0f}x faster, "
              "before the resize the decode path would also need)")

    t = time.perf_counter()
    for i in range(100):
        make_sample(i, 0, 288, 192)
    t_syn = time.perf_counter() - t
    print(f"\n3. synthetic samples at 288x192  {100 / t_syn:10.0f} images/s")


if __name__ == "__main__":
    main()

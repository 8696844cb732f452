"""Person-detector throughput on CCP photos (printed figures, not timed tests).

For each offline backend (hog with its defaults; haar full-body, upper-body and frontal-face
cascades; skin), ``detect_many`` runs over the same CCP photos (JPEG decoding included, no cache)
with OpenCV limited to 1 thread and then allowed all cores, and the images/s give the projection
for the paper's iMaterialist images, ``IMATERIALIST_IMAGES`` (whose JPEGs are larger than CCP's 550x825:
decoding will cost more there; detection itself runs at a fixed working height).

    CLOTHPARSE_DATA_DIR=... .venv/bin/python benchmarks/bench_persons.py [--images 60]
"""
from __future__ import annotations

import argparse
import os

import cv2

from clothparse_lib import settings
from clothparse_lib.data.ccp import locate
from clothparse_lib.refinement.persons import IMATERIALIST_IMAGES, detect_many, make_detector

BACKENDS = {
    "hog (default)": ("hog", {}),
    "haar fullbody": ("haar", {"cascade": "fullbody"}),
    "haar upperbody": ("haar", {"cascade": "upperbody"}),
    "haar frontalface": ("haar", {"cascade": "frontalface_default"}),
    "skin (synthetic only)": ("skin", {}),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", help=f"folder holding ccp/ (default ${settings.DATA_DIR_VAR})")
    ap.add_argument("--images", type=int, default=60, help="CCP photos per backend (the first N)")
    args = ap.parse_args()
    photos = sorted((locate(args.data_dir) / "photos").glob("*.jpg"))[: args.images]
    cores = len(os.sched_getaffinity(0))
    print(f"{len(photos)} CCP photos, {cores} cores, OpenCV {cv2.__version__}")
    print(f"{'backend':24s} {'threads':>7s} {'images/s':>9s} {f'{IMATERIALIST_IMAGES} images':>14s}")
    for label, (name, params) in BACKENDS.items():
        detector = make_detector(name, **params)
        for threads in sorted({1, cores}):
            cv2.setNumThreads(threads)
            run = detect_many(detector, photos, progress=False)
            print(f"{label:24s} {threads:7d} {run.images_per_second:9.2f} {run.projection(IMATERIALIST_IMAGES):12.1f} h")
    cv2.setNumThreads(cores)


if __name__ == "__main__":
    main()

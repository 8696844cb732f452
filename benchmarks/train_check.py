"""Training check: the extended model on CCP, measured side by side in one run.

Prints the data pipeline's images/s (cache -> augmentation -> normalisation, no model), the training
images/s, their ratio (target >= 4: the pipeline must not be the bottleneck), the peak GPU memory
and the test IoU after a few epochs. On a GPU it uses mixed precision (fp16) as the paper did:

    .venv/bin/python benchmarks/train_check.py --device cuda --size 288x192 --epochs 2 2
    .venv/bin/python benchmarks/train_check.py --device cpu --size 96x64 --epochs 1 0 --limit 120   # dry run
"""
from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from clothparse_lib.dataset import prepare_dataset
from clothparse_lib.evaluation import evaluate
from clothparse_lib.loaders import make_dataloaders
from clothparse_lib.profiles import get_profile
from clothparse_lib.training import load_model, train_model


def pipeline_images_per_second(dls, batches: int) -> float:
    n, t = 0, time.perf_counter()
    for i, (x, _) in enumerate(dls.train):
        n += len(x)
        if i + 1 >= batches:
            break
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return n / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--profile", default="demo", help="data of this profile (demo = CCP)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--size", default="288x192")
    ap.add_argument("--model", default="extended")
    ap.add_argument("--encoder", default="resnet34")
    ap.add_argument("--weights", default=None, help="imagenet, a local file, or none (default: imagenet for lite0, none for resnet34 offline)")
    ap.add_argument("--epochs", type=int, nargs=2, default=[2, 2], metavar=("FROZEN", "UNFROZEN"))
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--limit", type=int, help="use only the first N images (dry runs)")
    ap.add_argument("--data-dir")
    args = ap.parse_args()

    weights = args.weights or ("imagenet" if args.encoder == "efficientnet-lite0" else None)
    weights = None if weights == "none" else weights
    profile = get_profile(args.profile)
    with tempfile.TemporaryDirectory() as run:
        params = {"limit": args.limit} if args.limit else {}
        prepared = prepare_dataset(profile, data_dir=args.data_dir, run_dir=run, size=args.size, **params)
        settings = replace(profile.train, encoder=args.encoder, weights=weights, batch_size=args.batch_size,
                           epochs_frozen=args.epochs[0], epochs_unfrozen=args.epochs[1])
        dls = make_dataloaders(prepared.cache, prepared.split, ((0.5,) * 3, (0.5,) * 3), args.batch_size, args.device)
        pipeline = pipeline_images_per_second(dls, batches=min(20, len(dls.train)))
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        t = time.perf_counter()
        folder = train_model(prepared, args.model, settings, Path(run), device=args.device)
        seconds = time.perf_counter() - t
        n_train = len(dls.train) * args.batch_size * sum(args.epochs)
        model = load_model(folder / "best.pt", args.device)
        scores = evaluate(model, prepared.cache, prepared.split, progress=False).scores()["none"]
        device = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
        print(f"\n{args.model} ({args.encoder}, weights={weights}) on {len(prepared.cache)} {prepared.cache.manifest['source']} "
              f"images at {args.size}, batch {args.batch_size}, epochs {args.epochs}, device {device}"
              f"{', mixed precision' if args.device.startswith('cuda') else ''}")
        print(f"data pipeline      {pipeline:8.1f} images/s")
        print(f"training           {n_train / seconds:8.1f} images/s (incl. validation and checkpoints, {seconds:.0f} s)")
        print(f"pipeline/training  {pipeline / (n_train / seconds):8.1f}x (target >= 4)")
        if torch.cuda.is_available():
            print(f"peak GPU memory    {torch.cuda.max_memory_allocated() / 2**30:8.2f} GiB")
        print(f"test IoU excl. bg {100 * scores['iou_excl_bg']:.2f}, overall {100 * scores['iou_overall']:.2f}, "
              f"mask {100 * scores['iou_mask']:.2f}")


if __name__ == "__main__":
    main()

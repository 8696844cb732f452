"""Training check: the real training loop beside the bare train step and the data pipeline, in one run.

Prints, for one model, size and batch: the bare train step's images/s (forward, loss, backward, AdamW step on
batches already on the device: the ceiling of any loop), the real loop's images/s (``train_model``: data,
augmentation, metrics, validation and checkpoints included), their ratio (target >= 0.8), the data
pipeline's images/s (cache -> augmentation -> normalisation, no model) and its ratio to the loop (target >= 4),
peak GPU memory, the test IoU, and, given a run folder, the whole book's wall time from its ``book-times.csv``.
On a GPU it uses mixed precision (fp16) and channels-last as training does; on a CPU it is a dry run that
prints the same lines:

    .venv/bin/python benchmarks/train_check.py --device cuda --size 288x192 --epochs 2 2 --encoder efficientnet-lite0
    .venv/bin/python benchmarks/train_check.py --device cpu --size 96x64 --epochs 1 0 --limit 120   # dry run
"""
from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from clothparse_lib.book.runner import chapter_times
from clothparse_lib.data.loaders import make_dataloaders
from clothparse_lib.data.prepared import prepare_dataset
from clothparse_lib.evaluation.scores import evaluate
from clothparse_lib.models import build_model, load_model
from clothparse_lib.profiles import get_profile
from clothparse_lib.training.loop import train_model
from clothparse_lib.training.losses import ClothParsingLoss


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def pipeline_images_per_second(dls, batches: int, device: str) -> float:
    n, t = 0, time.perf_counter()
    for i, (x, _) in enumerate(dls.train):
        n += len(x)
        if i + 1 >= batches:
            break
    synchronize(device)
    return n / (time.perf_counter() - t)


def bare_step_images_per_second(prepared, model_name: str, settings, device: str, steps: int, warmup: int = 3) -> float:
    """Forward, the training's loss, backward and an AdamW step (torch's, all weights trainable) on batches drawn
    once from the data loader and kept on the device; fp16 autocast and channels-last on CUDA, as training."""
    cuda = device.startswith("cuda")
    model = build_model(model_name, encoder=settings.encoder, weights=None, img_size=prepared.cache.size).to(device)
    if cuda:
        model = model.to(memory_format=torch.channels_last)
    dls = make_dataloaders(prepared.cache, prepared.split, model.normalization, settings.batch_size, device)
    batches = [b for _, b in zip(range(4), dls.train)]
    loss_func = ClothParsingLoss(w_box=settings.w_box)
    opt = torch.optim.AdamW(model.parameters(), lr=settings.lr_frozen, weight_decay=settings.wd)
    scaler = torch.amp.GradScaler("cuda", enabled=cuda)
    n = 0
    for i in range(warmup + steps):
        if i == warmup:
            synchronize(device)
            t = time.perf_counter()
        x, y = batches[i % len(batches)]
        with torch.autocast("cuda", dtype=torch.float16, enabled=cuda):
            out = model(x)
        scaler.scale(loss_func(out, y)).backward()
        scaler.step(opt)
        scaler.update()
        opt.zero_grad(set_to_none=True)
        n += len(x) if i >= warmup else 0
    synchronize(device)
    return n / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--profile", default="full", help="data of this profile (demo, full = CCP)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--size", default="288x192")
    ap.add_argument("--model", default="extended")
    ap.add_argument("--encoder", default="efficientnet-lite0")
    ap.add_argument("--weights", default=None, help="imagenet, a local file, or none (default: imagenet for lite0, none for resnet34 offline)")
    ap.add_argument("--epochs", type=int, nargs=2, default=[2, 2], metavar=("FROZEN", "UNFROZEN"))
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--steps", type=int, default=30, help="timed bare train steps")
    ap.add_argument("--limit", type=int, help="use only the first N images (dry runs)")
    ap.add_argument("--data-dir")
    ap.add_argument("--book-run", type=Path, help="a run folder whose book-times.csv gives the whole book's wall time")
    args = ap.parse_args()

    weights = args.weights or ("imagenet" if args.encoder == "efficientnet-lite0" else None)
    weights = None if weights == "none" else weights
    profile = get_profile(args.profile)
    with tempfile.TemporaryDirectory() as run:
        params = {"limit": args.limit} if args.limit else {}
        prepared = prepare_dataset(profile, data_dir=args.data_dir, run_dir=run, size=args.size, progress=False, **params)
        settings = replace(profile.train, encoder=args.encoder, weights=weights, batch_size=args.batch_size,
                           epochs_frozen=args.epochs[0], epochs_unfrozen=args.epochs[1])
        dls = make_dataloaders(prepared.cache, prepared.split, ((0.5,) * 3, (0.5,) * 3), args.batch_size, args.device)
        pipeline = pipeline_images_per_second(dls, min(20, len(dls.train)), args.device)
        bare = bare_step_images_per_second(prepared, args.model, settings, args.device, args.steps)
        if args.device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        t = time.perf_counter()
        folder = train_model(prepared, args.model, settings, Path(run), device=args.device, progress=False)
        seconds = time.perf_counter() - t
        loop = len(dls.train) * args.batch_size * sum(args.epochs) / seconds
        scores = evaluate(load_model(folder / "best.pt", args.device), prepared.cache, prepared.split,
                          progress=False).scores()["none"]
    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu (dry run)"
    print(f"\n{args.model} ({args.encoder}, weights={weights}) on {len(prepared.cache)} {prepared.cache.manifest['source']} "
          f"images at {args.size}, batch {args.batch_size}, epochs {args.epochs}, device {device}, torch {torch.__version__}"
          f"{', fp16 autocast + channels-last' if args.device.startswith('cuda') else ''}")
    print(f"bare train step     {bare:8.1f} images/s")
    print(f"real training loop  {loop:8.1f} images/s (incl. data, validation and checkpoints, {seconds:.0f} s)")
    print(f"loop / bare step    {loop / bare:8.2f}   (target >= 0.8)")
    print(f"data pipeline       {pipeline:8.1f} images/s")
    print(f"pipeline / loop     {pipeline / loop:8.1f}x  (target >= 4)")
    if args.device.startswith("cuda"):
        print(f"peak GPU memory     {torch.cuda.max_memory_allocated() / 2**30:8.2f} GiB (loop)")
    print(f"test IoU excl. bg {100 * scores['iou_excl_bg']:.2f}, overall {100 * scores['iou_overall']:.2f}, "
          f"mask {100 * scores['iou_mask']:.2f}")
    if args.book_run:
        times = chapter_times(args.book_run)
        print(f"whole book          {times['seconds'].sum() / 60:8.1f} min ({len(times)} steps, {args.book_run})")


if __name__ == "__main__":
    main()

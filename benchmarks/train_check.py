"""Training check: the real training loop beside the bare train step and the data pipeline, in one run.

Prints, for one model, size and batch: the bare train step's images/s (forward, loss, backward, AdamW step on
batches already on the device: the ceiling of any loop), the real loop's images/s (``train_model``: data,
augmentation, metrics, validation and checkpoints included), their ratio (target >= 0.8), the data
pipeline's images/s (cache -> augmentation -> normalisation, no model) for fastai's DataLoader and for the
batches gathered and augmented on the device (cache held there, or read ahead into pinned host memory), the
pipeline's ratio to the loop (target >= 4), the real loop on the other batch path, the checkpoints' cost as a
share of an epoch (the time the Checkpointer holds the loop; target < 5 %; the write itself runs in the
background), peak memory, the test IoU, and, given a run folder, the whole book's wall time from its
``book-times.csv``. The training settings are the profile's with the command line's (``--precision``,
``--compile``, ``--data-on-device``); on a GPU that means fp16 mixed precision, channels-last, cudnn autotuning
and on-device batches. On a CPU it is a dry run that prints the same lines:

    .venv/bin/python benchmarks/train_check.py --device cuda --size 288x192 --epochs 2 2 --encoder efficientnet-lite0
    .venv/bin/python benchmarks/train_check.py --device cpu --size 96x64 --epochs 1 0 --limit 120 --threads 1  # dry run

``--compare-precision`` prints fp32 beside the fast path that ``precision="auto"`` picks on this device (on a CPU
with native bfloat16: bf16 autocast + channels-last, :mod:`clothparse_lib.training.precision`): the bare train
step, and the real loop trained once per seed (interleaved, so that both see the same machine load) with its
best validation IoU and its test IoU (target on a CPU: real loop >= 1.5x fp32 at 128x96, IoU within the seed
spread):

    .venv/bin/python benchmarks/train_check.py --device cpu --profile demo --size 128x96 --batch-size 8 \
        --epochs 1 2 --compare-precision --seeds 0 1
"""
from __future__ import annotations

import argparse
import resource
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import torch

from clothparse_lib.book.records import chapter_times
from clothparse_lib.data.loaders import training_dataloaders
from clothparse_lib.data.prepared import prepare_dataset
from clothparse_lib.evaluation.scores import evaluate
from clothparse_lib.models import build_model, load_model
from clothparse_lib.profiles import get_profile
from clothparse_lib.runfolder import best_checkpoint
from clothparse_lib.training.loop import COMPILE_BACKEND, train_model
from clothparse_lib.training.losses import ClothParsingLoss
from clothparse_lib.training.precision import resolve_precision, uses_channels_last


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def pipeline_images_per_second(dls, batches: int, device: str) -> float:
    """Training batches drawn (gathered, augmented, normalised) with no model: the first pass's set-up excluded."""
    it = iter(dls.train)
    next(it)
    synchronize(device)
    n, t = 0, time.perf_counter()
    for i, (x, _) in enumerate(it):
        n += len(x)
        if i + 1 >= batches:
            break
    synchronize(device)
    return n / (time.perf_counter() - t)


def bare_step_images_per_second(prepared, model_name: str, settings, device: str, steps: int, warmup: int = 3) -> float:
    """Forward, the training's loss, backward and an AdamW step (torch's, all weights trainable) on batches drawn
    once and kept on the device; the training's precision and memory format (training.precision) and compilation,
    as asked."""
    precision = resolve_precision(settings.precision, device, model_name)
    model = build_model(model_name, encoder=settings.encoder, weights=None, img_size=prepared.cache.size).to(device)
    if uses_channels_last(precision, device):
        model = model.to(memory_format=torch.channels_last)
    dls = training_dataloaders(prepared.cache, prepared.split, model.normalization, settings.batch_size, device,
                               data_on_device=settings.data_on_device)
    batches = [tuple(t.as_subclass(torch.Tensor) for t in b) for _, b in zip(range(4), dls.train)]
    step_model = torch.compile(model, backend=COMPILE_BACKEND) if settings.compile else model
    loss_func = ClothParsingLoss(w_box=settings.w_box)
    opt = torch.optim.AdamW(model.parameters(), lr=settings.lr_frozen, weight_decay=settings.wd)
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision)
    scaler = torch.amp.GradScaler(device.split(":")[0], enabled=precision == "fp16")
    n = 0
    for i in range(warmup + steps):
        if i == warmup:
            synchronize(device)
            t = time.perf_counter()
        x, y = batches[i % len(batches)]
        with torch.autocast(device.split(":")[0], dtype=dtype, enabled=dtype is not None):
            out = step_model(x)
        scaler.scale(loss_func(out, y)).backward()
        scaler.step(opt)
        scaler.update()
        opt.zero_grad(set_to_none=True)
        n += len(x) if i >= warmup else 0
    synchronize(device)
    return n / (time.perf_counter() - t)


def timed_training(prepared, model: str, settings, run: Path, device: str, tag: str):
    """train_model's images/s (every epoch's training images over the wall time), its folder, per-epoch timings
    and the batch path it used."""
    timings = []
    t = time.perf_counter()
    folder = train_model(prepared, model, settings, run, device=device, progress=False, tag=tag, timings=timings)
    seconds = time.perf_counter() - t
    dls = training_dataloaders(prepared.cache, prepared.split, ((0.5,) * 3, (0.5,) * 3), settings.batch_size, device,
                               data_on_device=settings.data_on_device)
    images = len(dls.train) * settings.batch_size * (settings.epochs_frozen + settings.epochs_unfrozen)
    return images / seconds, seconds, folder, timings, dls.train.placement


def compare_precision(prepared, model: str, settings, device: str, steps: int, seeds, run: Path) -> None:
    """fp32 beside the fast path of ``precision="auto"``: bare step, then the real loop per seed, interleaved."""
    fast = resolve_precision("auto", device, model)
    modes = {"fp32": replace(settings, precision="fp32"), fast: replace(settings, precision="auto")}
    if fast == "fp32":
        print(f"no fast path for {model} on {device}: precision auto is fp32 here")
        return
    bare = {name: bare_step_images_per_second(prepared, model, s, device, steps) for name, s in modes.items()}
    rows = {name: [] for name in modes}
    for seed in seeds:
        for name, s in modes.items():
            t = time.perf_counter()
            folder = train_model(prepared, model, s, run, seed=seed, device=device, progress=False, tag=f"{name}-{seed}")
            seconds = time.perf_counter() - t
            history = pd.read_csv(folder / "history.csv")
            test = evaluate(load_model(best_checkpoint(folder), device), prepared.cache, prepared.split, progress=False)
            rows[name].append({"seed": seed, "seconds": seconds, "epoch seconds": history["seconds"].mean(),
                               "valid": 100 * history["valid_iou_excl_bg"].max(),
                               "test": 100 * test.scores()["none"]["iou_excl_bg"]})
    layout = " + channels-last" if uses_channels_last(fast, device) else ""
    print(f"\n{model} on {len(prepared.cache)} images at {prepared.cache.size[0]}x{prepared.cache.size[1]}, batch "
          f"{settings.batch_size}, epochs {settings.epochs_frozen} + {settings.epochs_unfrozen}, {device}, "
          f"{torch.get_num_threads()} thread(s), torch {torch.__version__}: fp32 vs {fast}{layout}")
    print(f"bare train step     fp32 {bare['fp32']:6.1f} images/s   {fast}{layout} {bare[fast]:6.1f}   "
          f"ratio {bare[fast] / bare['fp32']:.2f}x")
    for a, b in zip(rows["fp32"], rows[fast]):
        print(f"real loop, seed {a['seed']}   fp32 {a['seconds']:6.0f} s ({a['epoch seconds']:.1f} s/epoch)   "
              f"{fast} {b['seconds']:6.0f} s ({b['epoch seconds']:.1f} s/epoch)   ratio {a['seconds'] / b['seconds']:.2f}x "
              "(target >= 1.5)")
        print(f"  IoU excl. bg, seed {a['seed']}: best valid fp32 {a['valid']:.2f} / {fast} {b['valid']:.2f}, "
              f"test fp32 {a['test']:.2f} / {fast} {b['test']:.2f}")
    for key in ("valid", "test"):
        d = [b[key] - a[key] for a, b in zip(rows["fp32"], rows[fast])]
        print(f"{key} IoU, {fast} - fp32 per seed: {', '.join(f'{v:+.2f}' for v in d)} (mean {sum(d) / len(d):+.2f})")


def peak_host_memory_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # kB on Linux


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--profile", default="full", help="data of this profile (demo, full = CCP)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--size", default="288x192")
    ap.add_argument("--model", default="extended")
    ap.add_argument("--encoder", default="efficientnet-lite0")
    ap.add_argument("--weights", default=None,
                    help="imagenet, a local file, or none (default: imagenet for lite0, none for resnet34 offline)")
    ap.add_argument("--epochs", type=int, nargs=2, default=[2, 2], metavar=("FROZEN", "UNFROZEN"))
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--steps", type=int, default=30, help="timed bare train steps")
    ap.add_argument("--limit", type=int, help="use only the first N images (dry runs)")
    ap.add_argument("--data-dir")
    ap.add_argument("--book-run", type=Path, help="a run folder whose book-times.csv gives the whole book's wall time")
    ap.add_argument("--precision", choices=["auto", "fp32", "fp16", "bf16"], default="auto")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model (loop and bare step)")
    ap.add_argument("--data-on-device", choices=["auto", "device", "host", "off"], default="auto")
    ap.add_argument("--threads", type=int, help="torch's CPU threads (dry runs on shared cores: 1)")
    ap.add_argument("--compare-precision", action="store_true",
                    help="fp32 beside the fast path of precision auto: bare step and the real loop per seed")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="seeds of --compare-precision's trainings")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    weights = args.weights or ("imagenet" if args.encoder == "efficientnet-lite0" else None)
    weights = None if weights == "none" else weights
    profile = get_profile(args.profile)
    cuda = args.device.startswith("cuda")
    stats = ((0.5,) * 3, (0.5,) * 3)
    with tempfile.TemporaryDirectory() as run:
        params = {"limit": args.limit} if args.limit else {}
        prepared = prepare_dataset(profile, data_dir=args.data_dir, run_dir=run, size=args.size, progress=False, **params)
        settings = replace(profile.train, encoder=args.encoder, weights=weights, batch_size=args.batch_size,
                           epochs_frozen=args.epochs[0], epochs_unfrozen=args.epochs[1], precision=args.precision,
                           compile=args.compile, data_on_device=args.data_on_device)
        if args.compare_precision:
            return compare_precision(prepared, args.model, settings, args.device, args.steps, args.seeds, Path(run))
        pipelines = {}
        for path in ("off", "device", "host"):
            dls = training_dataloaders(prepared.cache, prepared.split, stats, args.batch_size, args.device,
                                       data_on_device=path)
            pipelines[dls.train.placement] = pipeline_images_per_second(dls, min(20, len(dls.train) - 1), args.device)
        bare = bare_step_images_per_second(prepared, args.model, settings, args.device, args.steps)
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        loop, seconds, folder, timings, placement = timed_training(prepared, args.model, settings, Path(run),
                                                                   args.device, "main")
        peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else peak_host_memory_gib()
        other = replace(settings, data_on_device="off" if placement != "fastai" else "device")
        other_loop, other_seconds, _, _, other_placement = timed_training(prepared, args.model, other, Path(run),
                                                                          args.device, "other")
        scores = evaluate(load_model(best_checkpoint(folder), args.device), prepared.cache, prepared.split,
                          progress=False).scores()["none"]
    device = torch.cuda.get_device_name() if cuda else "cpu (dry run)"
    precision = resolve_precision(settings.precision, args.device, args.model)
    names = {"fastai": "fastai DataLoader", "device": "device batches (cache on the device)",
             "host": "host batches (pinned, prefetched)"}
    print(f"\n{args.model} ({args.encoder}, weights={weights}) on {len(prepared.cache)} {prepared.cache.manifest['source']} "
          f"images at {args.size}, batch {args.batch_size}, epochs {args.epochs}, device {device}, torch {torch.__version__}, "
          f"{precision}{' + channels-last' if uses_channels_last(precision, args.device) else ''}"
          f"{', compiled' if args.compile else ''}, batches: {names[placement]}")
    print(f"bare train step     {bare:8.1f} images/s")
    print(f"real training loop  {loop:8.1f} images/s (incl. data, validation and checkpoints, {seconds:.0f} s)")
    print(f"loop / bare step    {loop / bare:8.2f}   (target >= 0.8)")
    for key, name in names.items():
        print(f"data pipeline       {pipelines[key]:8.1f} images/s  {name}")
    print(f"pipeline / loop     {pipelines[placement] / loop:8.1f}x  (target >= 4; {names[placement]})")
    print(f"loop, other path    {other_loop:8.1f} images/s ({names[other_placement]}, {other_seconds:.0f} s)")
    print(f"device / fastai     {(loop / other_loop) ** (1 if placement != 'fastai' else -1):8.2f}x  (real loop, "
          "device batches over the fastai DataLoader)")
    blocking = [t["checkpoint_seconds"] / t["epoch_seconds"] for t in timings]
    written = sum(t.get("write_seconds", 0.0) for t in timings) / max(1, len(timings))
    print(f"checkpoint cost     {100 * max(blocking):8.2f} % of an epoch (worst of {len(timings)}; mean "
          f"{100 * sum(blocking) / len(blocking):.2f} %; target < 5 %; written in {written:.2f} s in the background)")
    print(f"peak {'GPU' if cuda else 'host'} memory    {peak:8.2f} GiB ({'loop' if cuda else 'process, RSS'})")
    print(f"test IoU excl. bg {100 * scores['iou_excl_bg']:.2f}, overall {100 * scores['iou_overall']:.2f}, "
          f"mask {100 * scores['iou_mask']:.2f}")
    if args.book_run:
        times = chapter_times(args.book_run)
        print(f"whole book          {times['seconds'].sum() / 60:8.1f} min ({len(times)} steps, {args.book_run})")


if __name__ == "__main__":
    main()

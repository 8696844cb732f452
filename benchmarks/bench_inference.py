"""Inference speed and test IoU of one trained model on four paths, measured side by side in one run:

* torch fp32 (``evaluation.predictor.Predictor``, what ``clothparse predict`` runs);
* torch's CPU fast path: bf16 autocast + channels-last, as ``training/precision.py`` trains on a CPU with native
  bfloat16 (fp32 where it resolves to fp32: DeepLabV3+, or a CPU without bf16);
* onnxruntime fp32 (``clothparse export`` + ``inference.runtime.OnnxModel``, ``predict --backend onnx``);
* onnxruntime int8: the same file after ``onnxruntime.quantization.quantize_dynamic`` (int8 weights, activations
  quantized at run time), kept only if its test IoU is within 0.5 point of fp32's (the table says).

Photos/s is the model's throughput on images already at its size (normalisation + forward; the photo's decoding,
squashing and the post-processing to the photo's size are the same numpy code for every path): batches of the
test images, each path run for ``--seconds`` in each of ``--rounds`` rounds taken in turn (so that a load beside
the benchmark weighs on every path alike), the median round reported. IoU: excl. background, on the test split of
the run folder's refined data (what the book scores), from the argmax of each path's logits at the model's size,
with the library's confusion counts and scores (``metrics``); ``--limit`` takes the first N test images for a quick
run. Nothing is written to the run folder.

    CLOTHPARSE_RUNS_DIR=~/.cache/clothparse/runs .venv/bin/python benchmarks/bench_inference.py --profile cpu \\
        --checkpoint extended --threads 1
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from clothparse_lib import settings
from clothparse_lib.data.cache import build_cache
from clothparse_lib.data.split import load_split, split_rows
from clothparse_lib.evaluation.parsing import resolve_checkpoint
from clothparse_lib.evaluation.predictor import Predictor
from clothparse_lib.inference.card import card_path, read_card
from clothparse_lib.inference.runtime import OnnxModel
from clothparse_lib.metrics import confusion_matrix, segmentation_scores
from clothparse_lib.models.checkpoints import load_model
from clothparse_lib.models.export import export_onnx
from clothparse_lib.storage import file_sha256
from clothparse_lib.taxonomy import N_CLASSES
from clothparse_lib.training.precision import cpu_has_native_bf16, resolve_precision, uses_channels_last

IOU_TOLERANCE = 0.5  # points of IoU excl. bg that int8 may lose against fp32


class TorchPath:
    """Predictor's logits, optionally under bf16 autocast with channels-last weights and inputs."""

    def __init__(self, model, precision: str):
        self.precision = precision
        if uses_channels_last(precision, "cpu"):
            model = model.to(memory_format=torch.channels_last)
        self.predictor = Predictor(model, "cpu", batch_size=64)
        self.channels_last = uses_channels_last(precision, "cpu")

    def logits(self, images: np.ndarray) -> np.ndarray:
        x = self.predictor.inputs(images)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        autocast = torch.autocast("cpu", dtype=torch.bfloat16) if self.precision == "bf16" else contextlib.nullcontext()
        with autocast:
            return self.predictor.run(x).seg.float().numpy()


class OnnxPath:
    def __init__(self, path: Path, threads: int):
        self.model = OnnxModel(path, threads=threads, batch_size=64)

    def logits(self, images: np.ndarray) -> np.ndarray:
        return self.model.logits(images)[0]


def quantized(fp32: Path) -> Path:
    """``fp32`` with int8 weights (dynamic quantization), its card copied beside it. onnxruntime's basic graph
    optimisations run first (constant folding: the Extended U-Net's injection slices its convolution's weight in the
    graph, which the quantizer needs as a constant), and the shapes the graph records are dropped (onnx's shape
    inference, which the quantizer runs, disagrees with the ones the optimiser leaves; it infers them again)."""
    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    folded, out = fp32.with_name(fp32.stem + "-folded.onnx"), fp32.with_name(fp32.stem + "-int8.onnx")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(folded)
    ort.InferenceSession(str(fp32), options, providers=["CPUExecutionProvider"])
    graph = onnx.load(str(folded))
    del graph.graph.value_info[:]
    onnx.save(graph, str(folded))
    logging.getLogger().setLevel(logging.ERROR)  # the quantizer's advice to pre-process: done above
    quantize_dynamic(str(folded), str(out), weight_type=QuantType.QInt8)
    card = read_card(fp32)  # the same inputs and outputs; another file
    card["onnx"] = {**card["onnx"], "file": out.name, "sha256": file_sha256(out)}
    card_path(out).write_text(json.dumps(card, indent=1))
    return out


def test_data(profile: str, run_dir: Path, data_dir):
    """The run folder's refined test images and masks, read only (``Run.refined()`` would rewrite its split file)."""
    from clothparse_lib.refinement.refine import RefinedSource
    from clothparse_lib.results.run import Run

    run = Run.open(profile, run_dir, data_dir, progress=False)
    split_file = run.run_dir / "split-refined.csv"
    if split_file.exists() and (run.run_dir / "refined_index.csv").exists():
        cache = build_cache(RefinedSource(run.source(), run.refined_index()), run.profile.size, progress=False)
        split = load_split(split_file)
    else:
        prepared = run.refined()
        cache, split = prepared.cache, prepared.split
    return cache, split_rows(cache, split, "test")


def iou(path, images: np.ndarray, masks: np.ndarray, batch: int = 8) -> float:
    conf = torch.zeros(N_CLASSES, N_CLASSES, dtype=torch.long)
    for start in range(0, len(images), batch):
        pred = torch.from_numpy(path.logits(images[start:start + batch]).argmax(1))
        conf += confusion_matrix(pred, torch.from_numpy(masks[start:start + batch]).long())
    return 100 * segmentation_scores(conf.numpy())["iou_excl_bg"]


def throughput(path, images: np.ndarray, batch: int, seconds: float) -> float:
    """Photos/s of ``path`` on batches of ``images`` (cycled) for about ``seconds``, after one warm-up batch."""
    starts = list(range(0, len(images) - batch + 1, batch)) or [0]
    path.logits(images[:batch])
    n, t0, i = 0, time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds or n == 0:
        path.logits(images[starts[i % len(starts)]:starts[i % len(starts)] + batch])
        n, i = n + batch, i + 1
    return n / (time.perf_counter() - t0)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", default="extended", help="a checkpoint file or a model of the run folder")
    p.add_argument("--profile", default="demo")
    p.add_argument("--runs-dir")
    p.add_argument("--run-dir", type=Path)
    p.add_argument("--data-dir")
    p.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch's and onnxruntime's threads")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    p.add_argument("--seconds", type=float, default=3.0, help="per path, batch size and round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--limit", type=int, help="the first N test images only (a quick run)")
    args = p.parse_args(argv)
    import onnxruntime
    onnxruntime.set_default_logger_severity(3)  # errors only (its constant folding's notes are not ours)
    torch.set_num_threads(args.threads)
    run_dir = settings.run_dir(args.profile, args.run_dir, args.runs_dir)
    checkpoint = resolve_checkpoint(args.checkpoint, run_dir)
    model = load_model(checkpoint, "cpu")
    name = model.manifest["model"]
    cache, rows = test_data(args.profile, run_dir, args.data_dir)
    rows = rows[:args.limit] if args.limit else rows
    images, masks = cache.batch(rows)
    fast = resolve_precision("auto", "cpu", name)
    work = Path(tempfile.mkdtemp(prefix="bench-inference-"))
    try:
        export_onnx(checkpoint, work / f"{name}.onnx")
        paths = {"torch fp32": TorchPath(model, "fp32"),
                 f"torch fast path ({'bf16 + channels-last' if fast == 'bf16' else fast})":
                     TorchPath(load_model(checkpoint, "cpu"), fast),
                 "onnxruntime fp32": OnnxPath(work / f"{name}.onnx", args.threads),
                 "onnxruntime int8 (dynamic)": OnnxPath(quantized(work / f"{name}.onnx"), args.threads)}
        scores = {label: iou(path, images, masks) for label, path in paths.items()}
        speed = {(label, b): [] for label in paths for b in args.batch_sizes}
        for _ in range(args.rounds):
            for b in args.batch_sizes:
                for label, path in paths.items():
                    speed[label, b].append(throughput(path, images, b, args.seconds))
        sizes = {"onnxruntime fp32": (work / f"{name}.onnx").stat().st_size,
                 "onnxruntime int8 (dynamic)": (work / f"{name}-int8.onnx").stat().st_size}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    evaluation = checkpoint.parent / "evaluation.json"
    stated = json.loads(evaluation.read_text())["scores"]["none"]["iou_excl_bg"] * 100 if evaluation.exists() else None
    print(f"{name} ({checkpoint}), {model.img_size[0]}x{model.img_size[1]}, {len(rows)} test images; "
          f"{args.threads} thread(s), torch {torch.__version__}, onnxruntime {_ort_version()}, "
          f"native bf16: {cpu_has_native_bf16()}; photos/s: median of {args.rounds} rounds of {args.seconds:g} s"
          + (f"; the run folder's evaluation.json: {stated:.2f}" if stated is not None else ""))
    header = f"{'path':42s}" + "".join(f"{f'batch {b}':>12s}" for b in args.batch_sizes) + f"{'test IoU':>10s}{'size':>9s}"
    print(header)
    reference = scores["torch fp32"]
    for label in paths:
        cells = "".join(f"{statistics.median(speed[label, b]):9.1f} p/s" for b in args.batch_sizes)
        size = f"{sizes[label] / 2**20:6.1f} MB" if label in sizes else ""
        print(f"{label:42s}{cells}{scores[label]:10.2f}{size:>9s}")
    loss = reference - scores["onnxruntime int8 (dynamic)"]
    print(f"int8 keeps the test IoU within {IOU_TOLERANCE} point of fp32 (loses at most that much): "
          f"{'yes' if loss <= IOU_TOLERANCE else 'no'} ({-loss:+.2f} points)")
    return 0


def _ort_version() -> str:
    import onnxruntime
    return onnxruntime.__version__


if __name__ == "__main__":
    sys.exit(main())

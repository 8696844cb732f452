"""A trained model as an ONNX file with its JSON card, for inference without torch (``clothparse export``).

The graph takes ``image``, (B, 3, h, w) float32 at the checkpoint's training size (RGB scaled to [0, 1] and normalised
as the card says) and, for the models whose ClassBranch feeds the segmentation (:data:`unet.PRIOR_MODELS`), ``prior``,
(B, 8) float32 as :mod:`prior` defines it (NaN unknown, 0 absent, 1 present: all NaN says that nothing is known). It
returns ``seg``, (B, 9, h, w) segmentation logits, and for the models with a ClassBranch ``cls``, (B, 8) logits after
the prior; the BBbranch is left out (parsing does not read it). The batch is dynamic. The other models have no
``prior`` input (a prior would change nothing there, :func:`unet.require_prior_input`); the ONNX runtime refuses one
for them as the torch path does. ``evaluation.runtime.OnnxModel`` runs the file.

The card (``model.onnx`` -> ``model.json``) states the classes and their colours, the input (size, scaling,
normalisation, resize), the prior input, the profile and seed of the training, the test IoU of the run folder's
``evaluation.json`` (when it evaluated this checkpoint), the checkpoint's digest and the ONNX file's SHA-256.

The exporter is torch.export's (``dynamo=True``, which needs ``onnxscript``): the TorchScript exporter
(``dynamo=False``) traced the Extended U-Net's injection (:class:`parts.BranchInjection`'s in-place writes of its
border values) wrongly, logits off by up to 2.4 and 0.6 % of the pixels changing class, where torch.export's graph
matches the eager model to 1e-5. Every export is checked the same way: the file is run with onnxruntime beside the
eager model (with a prior where the model takes one) and refused when they differ.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..runfolder import result_file
from ..storage import write_atomic
from ..taxonomy import CLASSES, COLORS, GARMENTS
from .checkpoints import file_sha256, load_model, read_checkpoint

__all__ = ["OPSET", "CARD_FORMAT", "card_path", "export_onnx"]

OPSET = 20  # ai.onnx 20 (torch 2.14's default): onnxruntime 1.31 runs it with every CPU kernel
CARD_FORMAT = 1


def card_path(onnx_file: str | Path) -> Path:
    """The card of an ONNX file: ``model.onnx`` -> ``model.json``."""
    return Path(onnx_file).with_suffix(".json")


class _Graph(nn.Module):
    """What is exported: the segmentation logits (and the ClassBranch's) of an image batch, a prior injected."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model, self.prior = model, bool(getattr(model, "supports_prior", False))

    def forward(self, image: torch.Tensor, prior: torch.Tensor | None = None):
        out = self.model(image, class_prior=prior) if self.prior else self.model(image)
        return (out.seg,) if out.cls is None else (out.seg, out.cls)


def _evaluation(checkpoint: Path) -> dict | None:
    """The test scores the run folder states for ``checkpoint``: its model folder's ``evaluation.json`` when that is
    newer than the checkpoint and evaluated it (the book's evaluations read ``best.pt``; ``clothparse evaluate`` says
    which)."""
    path = result_file(checkpoint.parent, "evaluation")
    if not path.is_file() or path.stat().st_mtime < checkpoint.stat().st_mtime:
        return None
    evaluation = json.loads(path.read_text())
    if evaluation.get("checkpoint", "best") != checkpoint.stem:
        return None
    scores = evaluation.get("scores", {})
    if "none" not in scores:
        return None
    out = {"split": evaluation.get("split", evaluation.get("name")), "data": evaluation.get("data"),
           "images": evaluation.get("n_images"),
           **{k: scores["none"][k] for k in ("iou_excl_bg", "iou_overall", "iou_mask") if k in scores["none"]}}
    if "gt" in scores:
        out["iou_excl_bg_with_true_prior"] = scores["gt"]["iou_excl_bg"]
    return out


def _card(model: nn.Module, ckpt: dict, checkpoint: Path, out: Path, outputs: list[str]) -> dict:
    m, (h, w) = ckpt["manifest"], model.img_size
    mean, std = model.normalization
    prior = model.supports_prior
    return {
        "format": CARD_FORMAT,
        "model": m["model"], "encoder": m["settings"]["encoder"],
        "classes": [{"index": i, "name": c, "color": "#{:02x}{:02x}{:02x}".format(*COLORS[c])}
                    for i, c in enumerate(CLASSES)],
        "input": {"name": "image", "shape": ["batch", 3, h, w], "size": [h, w], "channels": "RGB",
                  "scale": "1/255", "mean": [float(v) for v in mean], "std": [float(v) for v in std],
                  "resize": "the photo squashed to the size (bilinear), as in training"},
        "prior": {"name": "prior", "shape": ["batch", len(GARMENTS)], "garments": list(GARMENTS),
                  "values": "NaN unknown, 0 absent, 1 present"} if prior else None,
        "outputs": {"seg": ["batch", len(CLASSES), h, w], **({"cls": ["batch", len(GARMENTS)]} if "cls" in outputs else {})},
        "profile": m.get("profile"), "seed": m.get("seed"), "size": [h, w],
        "test": _evaluation(checkpoint),
        "checkpoint": {"path": str(checkpoint), "digest": ckpt["digest"], "sha256": file_sha256(checkpoint)},
        "onnx": {"file": out.name, "sha256": file_sha256(out), "opset": OPSET},
        "torch": torch.__version__,
    }


def _check(graph: _Graph, args: tuple, onnx_file: Path, names: list[str]) -> None:
    """Refuse an ONNX file whose outputs differ from the eager model's on ``args``."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3  # errors only
    session = ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
    got = session.run(None, {name: a.numpy() for name, a in zip(names, args)})
    with torch.no_grad():
        want = [t.numpy() for t in graph(*args)]
    for name, g, t in zip(session.get_outputs(), got, want):
        finite = np.isfinite(t)
        bad = g.shape != t.shape or not (np.isfinite(g) == finite).all() or \
            np.abs(g[finite] - t[finite]).max(initial=0) > 1e-3 * max(1.0, np.abs(t[finite]).max(initial=0))
        if bad:
            raise ValueError(f"the exported graph's {name.name!r} differs from the model's (torch {torch.__version__}'s "
                             "exporter); nothing written")


def export_onnx(checkpoint: str | Path, out: str | Path) -> dict:
    """Export the model of ``checkpoint`` to ``out`` (``.onnx``) and write its card beside it (:func:`card_path`);
    returns the card. A file that is not a clothparse checkpoint, or a model the exporter gets wrong, is a
    ``ValueError`` (and nothing is written)."""
    checkpoint, out = Path(checkpoint), Path(out)
    if out.suffix != ".onnx":
        raise ValueError(f"--out {out} must name an .onnx file (its card goes beside it as {card_path(out).name})")
    if out.is_dir():
        raise ValueError(f"--out {out} is a folder: name the .onnx file")
    ckpt = read_checkpoint(checkpoint)
    model = load_model(checkpoint, "cpu").eval()
    graph = _Graph(model).eval()
    h, w = model.img_size
    image = torch.randn(2, 3, h, w, generator=torch.Generator().manual_seed(0))
    names = ["image"] + (["prior"] if graph.prior else [])
    args = (image,)
    if graph.prior:  # image 0: nothing known; image 1: the first garment present, the second absent
        prior = torch.full((2, len(GARMENTS)), float("nan"))
        prior[1, :2] = torch.tensor([1.0, 0.0])
        args = (image, prior)
    with torch.no_grad():
        outputs = ["seg"] + (["cls"] if len(graph(*args)) > 1 else [])
    batch = torch.export.Dim("batch", min=1, max=4096)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.{os.getpid()}.partial")
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):  # the exporter's progress lines
            warnings.simplefilter("ignore")
            torch.onnx.export(graph, args, str(partial), input_names=names, output_names=outputs,
                              dynamic_shapes=tuple({0: batch} for _ in args), opset_version=OPSET, dynamo=True,
                              external_data=False, verbose=False)
        _check(graph, args, partial, names)
    except ValueError:
        partial.unlink(missing_ok=True)
        raise
    except Exception as e:  # the exporter fails in many ways: one line
        partial.unlink(missing_ok=True)
        first = (str(e).strip().splitlines() or [""])[0]
        raise ValueError(f"{checkpoint}: model {ckpt['manifest']['model']!r} cannot be exported to ONNX "
                         f"({type(e).__name__}: {first})") from None
    os.replace(partial, out)
    card = _card(model, ckpt, checkpoint, out, outputs)
    write_atomic(card_path(out), json.dumps(card, indent=1))
    return card

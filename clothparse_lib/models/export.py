"""A trained model as an ONNX file with its JSON card, for inference without torch (``clothparse export``).

The graph takes ``image``, (B, 3, h, w) float32 at the checkpoint's training size (RGB scaled to [0, 1] and normalised
as the card says) and, for the models whose ClassBranch feeds the segmentation (:data:`unet.PRIOR_MODELS`), ``prior``,
(B, 8) float32 as :mod:`prior` defines it (NaN unknown, 0 absent, 1 present: all NaN says that nothing is known). It
returns ``seg``, (B, 9, h, w) segmentation logits, and for the models with a ClassBranch ``cls``, (B, 8) logits after
the prior; the BBbranch is left out (parsing does not read it). The batch is dynamic. The other models have no
``prior`` input (a prior would change nothing there, :func:`unet.require_prior_input`); the ONNX runtime refuses one
for them as the torch path does. ``inference.runtime.OnnxModel`` runs the file.

The card (``model.onnx`` -> ``model.json``, :mod:`inference.card`) states the classes and their colours, the input
(size, scaling, normalisation, resize), the prior input, the outputs, the profile and seed of the training, the test
IoU the run folder states for the checkpoint, its digest and the ONNX file's SHA-256; the two files are written
together or not at all, after the target was found writable.

The exporter is torch.export's (``dynamo=True``, which needs ``onnxscript``): the TorchScript exporter
(``dynamo=False``) traced the Extended U-Net's injection (:class:`parts.BranchInjection`'s in-place writes of its
border values) wrongly, logits off by up to 2.4 and 0.6 % of the pixels changing class, where torch.export's graph
matches the eager model to 1e-5. Every export is checked the same way: the file is run with onnxruntime beside the
eager model (with a prior where the model takes one) and refused when they differ.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..inference.card import check_graph, check_target, make_card, write_model
from ..storage import file_sha256
from ..taxonomy import GARMENTS
from .checkpoints import load_model, read_checkpoint

__all__ = ["OPSET", "export_onnx"]

OPSET = 20  # ai.onnx 20 (torch 2.14's default): onnxruntime 1.31 runs it with every CPU kernel


class _Graph(nn.Module):
    """What is exported: the segmentation logits (and the ClassBranch's) of an image batch, a prior injected."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model, self.prior = model, bool(getattr(model, "supports_prior", False))

    def forward(self, image: torch.Tensor, prior: torch.Tensor | None = None):
        out = self.model(image, class_prior=prior) if self.prior else self.model(image)
        return (out.seg,) if out.cls is None else (out.seg, out.cls)


def _card(model: nn.Module, ckpt: dict, checkpoint: Path, out: Path, graph: bytes, outputs: list[str],
          test: dict | None) -> dict:
    m = ckpt["manifest"]
    mean, std = model.normalization
    return make_card(model=m["model"], encoder=m["settings"]["encoder"], size=model.img_size, mean=mean, std=std,
                     prior=model.supports_prior, cls="cls" in outputs, onnx_file=out,
                     onnx_sha256=hashlib.sha256(graph).hexdigest(), opset=OPSET,
                     provenance={"profile": m.get("profile"), "seed": m.get("seed"), "test": test,
                                 "checkpoint": {"path": str(checkpoint), "digest": ckpt["digest"],
                                                "sha256": file_sha256(checkpoint)},
                                 "torch": torch.__version__})


def _check(graph: _Graph, args: tuple, onnx_file: Path, names: list[str]):
    """Refuse an ONNX file whose outputs differ from the eager model's on ``args``; returns its onnxruntime session."""
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
    return session


def export_onnx(checkpoint: str | Path, out: str | Path, test: dict | None = None) -> dict:
    """Export the model of ``checkpoint`` to ``out`` (``.onnx``) and write its card beside it
    (:func:`inference.card.card_path`), the two together or not at all; returns the card. ``test``: the scores the
    run folder states for the checkpoint (``evaluation.scores.checkpoint_scores``). A target that cannot be written,
    a file that is not a clothparse checkpoint, or a model the exporter gets wrong, is a ``ValueError`` (and nothing
    is written); so is an interruption (nothing is left behind either)."""
    checkpoint, out = Path(checkpoint), check_target(out)
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
    partial = out.with_name(f".{out.name}.{os.getpid()}.partial")
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):  # the exporter's progress lines
            warnings.simplefilter("ignore")
            torch.onnx.export(graph, args, str(partial), input_names=names, output_names=outputs,
                              dynamic_shapes=tuple({0: batch} for _ in args), opset_version=OPSET, dynamo=True,
                              external_data=False, verbose=False)
        session = _check(graph, args, partial, names)
        data = partial.read_bytes()
    except ValueError:
        raise
    except Exception as e:  # the exporter fails in many ways: one line
        first = (str(e).strip().splitlines() or [""])[0]
        raise ValueError(f"{checkpoint}: model {ckpt['manifest']['model']!r} cannot be exported to ONNX "
                         f"({type(e).__name__}: {first})") from None
    finally:  # also on an interruption (Ctrl-C, SIGTERM): no partial file left behind
        partial.unlink(missing_ok=True)
    card = _card(model, ckpt, checkpoint, out, data, outputs, test)
    check_graph(out, card, {i.name: i.shape for i in session.get_inputs()},
                {o.name: o.shape for o in session.get_outputs()})  # what predict will check
    write_model(out, data, card)
    return card

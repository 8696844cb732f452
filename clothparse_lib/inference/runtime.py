"""An exported model (``clothparse export``, :mod:`models.export`) run by onnxruntime on the CPU: the ONNX backend of
:class:`parsing.Parser` (``clothparse predict --backend onnx``). A model that is not the one its card describes (its
SHA-256, its inputs, its outputs: :mod:`.card`) is refused before it runs.

Nothing here imports torch, fastai or the model code: a photo is parsed with numpy, Pillow and onnxruntime. The
model's card (``model.json`` beside ``model.onnx``) gives the input size, the normalisation and whether the graph
takes a prior; the images are squashed to the size as :class:`predictor.Predictor` squashes them
(:func:`data.base.fit_images`) and normalised as it normalises them.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..data.base import fit_images
from .card import check_file, check_graph, read_card
from .prior import prior_input, refuse_prior

__all__ = ["OnnxModel"]


class OnnxModel:
    """An exported model's logits for uint8 RGB images (:meth:`logits`, the interface of ``parsing.Backend``).

    ``threads``: onnxruntime's threads (default ``$OMP_NUM_THREADS`` when set, as the book and the tests divide
    the cores, else onnxruntime's own choice: the physical cores); ``batch_size`` images per run."""

    def __init__(self, path: str | Path, threads: int | None = None, batch_size: int = 16):
        import onnxruntime as ort

        self.path, self.card, self.batch_size = Path(path), read_card(path), batch_size
        self.name = self.card["model"]
        self.size = tuple(self.card["input"]["size"])
        self.mean, self.std = (np.asarray(self.card["input"][k], np.float32)[:, None, None] for k in ("mean", "std"))
        self.takes_prior = self.card["prior"] is not None
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: its optimiser's notes on the graph are not the user's business
        threads = threads or int(os.environ.get("OMP_NUM_THREADS") or 0)
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime's own errors (a truncated or foreign file): one line
            raise ValueError(f"{self.path} is not a model onnxruntime can run "
                             f"({(str(e).strip().splitlines() or [''])[0]})") from None
        check_graph(self.path, self.card, {i.name: i.shape for i in self.session.get_inputs()},
                    {o.name: o.shape for o in self.session.get_outputs()})
        check_file(self.path, self.card)
        self.outputs = [o.name for o in self.session.get_outputs()]

    def inputs(self, images: np.ndarray) -> np.ndarray:
        """uint8 RGB images (N, H, W, 3), or one (H, W, 3), of any size -> the graph's ``image`` (N, 3, h, w) float32."""
        images = fit_images(images[None] if images.ndim == 3 else images, self.size)
        x = np.ascontiguousarray(images.transpose(0, 3, 1, 2)).astype(np.float32)
        return (x / np.float32(255) - self.mean) / self.std

    def prior(self, n: int, class_prior=None) -> np.ndarray | None:
        """The graph's ``prior`` (n, 8) of ``class_prior`` ((8,) or (n, 8), NaN = unknown; None: nothing known);
        None for a graph without that input, which refuses a prior (as the torch models without one do)."""
        if not self.takes_prior:
            if class_prior is not None:
                raise refuse_prior(self.name)
            return None
        return prior_input(n, class_prior)

    def logits(self, images: np.ndarray, class_prior=None) -> tuple[np.ndarray, np.ndarray | None]:
        """Segmentation logits (N, 9, h, w) and ClassBranch logits (N, 8) (None without a branch) of ``images``,
        the prior injected, ``batch_size`` images per run."""
        images = images[None] if images.ndim == 3 else images
        prior = self.prior(len(images), class_prior)
        parts = []
        for start in range(0, len(images), self.batch_size):
            rows = slice(start, start + self.batch_size)
            feed = {"image": self.inputs(images[rows])}
            if prior is not None:
                feed["prior"] = prior[rows]
            parts.append(self.session.run(None, feed))
        outs = [np.concatenate(p) for p in zip(*parts)]
        return outs[0], outs[1] if len(outs) > 1 else None

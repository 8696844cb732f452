"""The torch backend of the parsing path (:mod:`inference.parsing`): :class:`Parser` with
:meth:`Parser.from_checkpoint`, a trained checkpoint run by :class:`predictor.Predictor`, and the run folder's
models by name (:func:`resolve_checkpoint`).

    parser = Parser.from_checkpoint("runs/demo/models/extended-refined/best.pt")  # or ("extended", run_dir="runs/demo")
    parser = Parser.from_onnx("extended.onnx")  # the same model exported: onnxruntime, no torch
    result = parser.parse("photo.jpg", present=["skirt"], absent=["dress"])

Importing this module loads neither torch nor the model code; :meth:`Parser.from_checkpoint` does.
"""
from __future__ import annotations

from pathlib import Path

from ..inference import parsing
from ..settings import tag

__all__ = ["resolve_checkpoint", "Parser"]


def resolve_checkpoint(checkpoint: str | Path, run_dir: str | Path) -> Path:
    """A checkpoint file, or the ``best.pt`` of a model of the run folder ``run_dir``: a folder name of
    ``models/`` (``extended`` as ``clothparse train`` names it, ``plain_unet-base``...), else the model's
    training on the refined data that the book's tables use (``extended`` -> ``models/extended-refined``)."""
    if Path(checkpoint).is_file():
        return Path(checkpoint)
    models = Path(run_dir) / "models"
    for name in (str(checkpoint), tag(str(checkpoint), "refined", 0)):
        if (models / name / "best.pt").is_file():
            return models / name / "best.pt"
    available = sorted(p.parent.name for p in models.glob("*/best.pt"))
    raise FileNotFoundError(f"checkpoint {str(checkpoint)!r} is neither a file nor a model of {models} "
                            f"({'models there: ' + ', '.join(available) if available else 'no trained model there'})")


class Parser(parsing.Parser):
    """:class:`inference.parsing.Parser`, which also runs trained checkpoints with torch."""

    @classmethod
    def from_checkpoint(cls, path: str | Path, device=None, run_dir: str | Path | None = None) -> "Parser":
        """``path``: a checkpoint file, or with ``run_dir`` a model trained there (:func:`resolve_checkpoint`)."""
        from ..models.checkpoints import load_model
        from .predictor import Predictor

        return cls(Predictor(load_model(resolve_checkpoint(path, run_dir) if run_dir else path, device), device))

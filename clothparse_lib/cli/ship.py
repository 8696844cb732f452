"""``clothparse export --ship``: make the model that ships with the package (:mod:`evaluation.ship`), and the
shipped model as ``clothparse predict``'s default (:func:`default_model`)."""
from __future__ import annotations

from pathlib import Path

from .checks import run_dir

__all__ = ["default_model", "ship"]


def default_model(args) -> None:
    """Without --checkpoint, --model and --backend, ``predict`` runs the shipped model (onnx) and names it; one line
    (:class:`inference.shipped.NoShippedModel`) while none ships."""
    if args.backend is None and args.checkpoint is None and args.model is None:
        from ..inference.shipped import describe, shipped_model

        args.model, card = shipped_model()
        args.backend = "onnx"
        print(f"model: the shipped {describe(card)}")
    args.backend = args.backend or "torch"


def ship(args) -> int:
    if args.out is not None:
        raise ValueError("export writes --out FILE.onnx, or with --ship the package's model (not both)")
    from ..evaluation.parsing import resolve_checkpoint
    from ..evaluation.ship import agreement_photos, ship_model
    from ..inference.shipped import describe, shipped_file

    checkpoint = resolve_checkpoint(args.checkpoint, run_dir(args))
    photos = [Path(p) for p in args.photos] if args.photos else agreement_photos(checkpoint, args.data_dir)
    card = ship_model(checkpoint, photos)
    shipped, found = card["shipped"], card["shipped"]["agreement"]["without_prior"]
    weights = "float16 weights" + (f", {len(shipped['int8_matrices'])} matrices int8" if shipped["int8_matrices"] else "")
    print(f"{describe(card)} ({checkpoint}) -> {shipped_file()} ({shipped['size_mb']:.1f} MiB, {weights}); "
          f"agrees with the float32 export on {100 * found['pixels']:.3f} % of the pixels of {len(photos)} photos "
          f"({100 * found['garment_lists']:.1f} % of the garment lists)")
    return 0

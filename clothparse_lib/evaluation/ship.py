"""Make the model that ships with the package (``clothparse export --ship``): a trained checkpoint exported
(:func:`models.export.export_onnx`), its weights stored as float16, and its largest matrices as int8 where that
is still over :data:`MAX_MB` (:func:`models.compact.compact_weights`: float32 compute), its masks compared with the
float32 export's on CCP's test photos, and written with its card into :data:`inference.shipped.SHIPPED_DIR`
(:func:`inference.card.write_model`: together, or neither).

The card is the export's, its ``onnx`` entry the compact file's, plus ``shipped``: the weights' formats (the int8
matrices by name), the size and its limit, the float32 file's SHA-256, the data set and the run's commit, and
``agreement``: the share of pixels whose class is the same and the share of photos with the same garment list,
without and with a prior (for a model that takes one).
"""
from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import numpy as np

from ..data.split import load_split
from ..inference import shipped
from ..inference.card import check_target, write_model
from ..inference.parsing import Parser
from ..profiles import get_profile

__all__ = ["MAX_MB", "AGREEMENT_PRIOR", "agreement_photos", "agreement", "ship_model"]

MAX_MB = 25  # the shipped file's limit: what a package, a repository and a browser page carry comfortably
AGREEMENT_PRIOR = {"present": ("top",), "absent": ("dress",)}  # the prior of the "with a prior" comparison


def agreement_photos(checkpoint: Path, data_dir: str | Path | None = None) -> list[Path]:
    """The CCP photos of the test split the checkpoint's training used (its manifest names the split file); a
    ``ValueError`` for a model trained on another data set (give the photos then)."""
    from ..data import ccp
    from ..models.checkpoints import read_checkpoint

    manifest = read_checkpoint(checkpoint)["manifest"]
    if get_profile(manifest["profile"]).source != "ccp":
        raise ValueError(f"{checkpoint} was trained on {get_profile(manifest['profile']).source} data, not CCP: "
                         "name the photos to compare the float16 model on (--photos)")
    split = load_split(Path(manifest["data"]["split"]))
    root = ccp.locate(data_dir, progress=False)
    return [root / "photos" / f"{i}.jpg" for i in sorted(split.loc[split["split"] == "test", "image_id"])]


def agreement(reference: Parser, other: Parser, photos: list[Path], prior: dict | None = None) -> dict:
    """How ``other`` parses ``photos`` compared with ``reference``: the share of pixels of the same class (all photos
    together, and the photo agreeing least) and the share of photos listing the same garments."""
    same = total = lists = 0
    least = 1.0
    for photo in photos:
        a, b = (p.parse(photo, **(prior or {})) for p in (reference, other))
        equal = int((a.mask == b.mask).sum())
        same, total, least = same + equal, total + a.mask.size, min(least, equal / a.mask.size)
        lists += [g.name for g in a.garments] == [g.name for g in b.garments]
    return {"pixels": same / total, "least_photo": least, "garment_lists": lists / len(photos)}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def ship_model(checkpoint: str | Path, photos: list[Path], dest: Path | None = None) -> dict:
    """Export ``checkpoint`` with compact weights (at most :data:`MAX_MB`) into ``dest`` (default
    :data:`shipped.SHIPPED_DIR`) after comparing it with the float32 export on ``photos``; returns its card. Nothing
    is written when even int8 matrices do not fit."""
    import onnx

    from ..models.checkpoints import read_checkpoint
    from ..models.compact import compact_weights
    from ..models.export import export_onnx
    from .scores import checkpoint_scores

    checkpoint, dest = Path(checkpoint), Path(dest or shipped.SHIPPED_DIR)
    if not photos:
        raise ValueError("no photos to compare the float16 model with the float32 one on")
    check_target(dest / shipped.MODEL_FILE)  # refused before the export's minute, not after it
    manifest = read_checkpoint(checkpoint)["manifest"]
    with tempfile.TemporaryDirectory(prefix="clothparse-ship-") as tmp:
        fp32_file, fp16_file = Path(tmp) / "fp32.onnx", Path(tmp) / shipped.MODEL_FILE
        card = export_onnx(checkpoint, fp32_file, test=checkpoint_scores(checkpoint))
        fp32 = onnx.load(fp32_file)
        small, int8 = compact_weights(fp32, MAX_MB * 2**20)
        data = small.SerializeToString()
        card["onnx"] = {**card["onnx"], "file": fp16_file.name, "sha256": _sha256(data)}
        write_model(fp16_file, data, card)
        reference, half = Parser.from_onnx(fp32_file), Parser.from_onnx(fp16_file)
        measured = {"photos": len(photos), "without_prior": agreement(reference, half, photos)}
        if card["prior"] is not None:
            measured["with_prior"] = {**AGREEMENT_PRIOR, **agreement(reference, half, photos, AGREEMENT_PRIOR)}
        card["checkpoint"]["path"] = "/".join(checkpoint.resolve().parts[-3:])  # in its run folder; no machine's path
        card["shipped"] = {
            "weights": _weights_in_words(fp32, int8),
            "int8_matrices": int8,
            "fp32_sha256": _sha256(fp32_file.read_bytes()),
            "dataset": get_profile(manifest["profile"]).source, "run_commit": manifest.get("git_commit"),
            "agreement": {"reference": "the float32 export", "data": _photos_data(photos), **measured},
            "size_mb": round(len(data) / 2**20, 2), "max_mb": MAX_MB,
        }
    write_model(dest / shipped.MODEL_FILE, data, card)
    return card


def _weights_in_words(fp32, int8: list[str]) -> str:
    """The shipped file's weight formats, in words."""
    if not int8:
        return "float16, cast to float32 at the graph's start (float32 compute)"
    sizes = {i.name: int(np.prod(i.dims)) for i in fp32.graph.initializer}
    share = sum(sizes[n] for n in int8) / sum(sizes.values())
    return (f"float16, and int8 with a scale per output channel for the {len(int8)} largest weight matrices "
            f"({share:.0%} of the weights), turned to float32 at the graph's start (float32 compute)")


def _photos_data(photos: list[Path]) -> str:
    """Where the compared photos come from, in words (a CCP copy's photos: "CCP")."""
    folders = {p.parent for p in photos}
    return "CCP" if all(f.name == "photos" and f.parent.name == "ccp" for f in folders) else \
        "photos of " + ", ".join(sorted(f.name for f in folders))

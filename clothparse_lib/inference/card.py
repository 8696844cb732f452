"""An exported model's card: ``model.json`` beside ``model.onnx`` (:func:`card_path`), what inference needs to know of
the graph (the classes and their colours, the input's size, scaling and normalisation, the prior input, the outputs)
and where it came from (profile, seed, test IoU, the checkpoint's digest, the ONNX file's SHA-256).

:func:`make_card` writes the format, :func:`read_card` reads it, :func:`write_model` writes a model and its card
together or not at all, :func:`check_target` refuses a target that could not be written before the export, and :func:`check_file` /
:func:`check_graph` refuse a model that is not the one its card
describes (another file, other inputs, other outputs), each in one line naming what differs.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ..storage import check_writable, file_sha256, write_files
from ..taxonomy import CLASSES, COLORS, GARMENTS

__all__ = ["CARD_FORMAT", "card_path", "check_target", "make_card", "write_model", "read_card", "check_file", "check_graph"]

CARD_FORMAT = 1


def card_path(onnx_file: str | Path) -> Path:
    """The card of an ONNX file: ``model.onnx`` -> ``model.json``."""
    return Path(onnx_file).with_suffix(".json")


def check_target(onnx_file: str | Path) -> Path:
    """Refuse, before any export, an ``onnx_file`` not named ``.onnx`` or that, or its card, could not be written."""
    onnx_file = Path(onnx_file)
    if onnx_file.suffix != ".onnx":
        raise ValueError(f"--out {onnx_file} must name an .onnx file (its card goes beside it as "
                         f"{card_path(onnx_file).name})")
    for target in (onnx_file, card_path(onnx_file)):
        check_writable(target)
    return onnx_file


def make_card(*, model: str, encoder: str, size: tuple[int, int], mean, std, prior: bool, cls: bool, onnx_file: Path,
              onnx_sha256: str, opset: int, provenance: dict) -> dict:
    """The card of the graph of ``model`` at ``size`` (h, w): ``prior``, whether it takes a ``prior`` input; ``cls``,
    whether it returns the ClassBranch's logits; ``provenance``: profile, seed, test, checkpoint, torch."""
    h, w = size
    return {
        "format": CARD_FORMAT, "model": model, "encoder": encoder,
        "classes": [{"index": i, "name": c, "color": "#{:02x}{:02x}{:02x}".format(*COLORS[c])}
                    for i, c in enumerate(CLASSES)],
        "input": {"name": "image", "shape": ["batch", 3, h, w], "size": [h, w], "channels": "RGB",
                  "scale": "1/255", "mean": [float(v) for v in mean], "std": [float(v) for v in std],
                  "resize": "the photo squashed to the size (bilinear), as in training"},
        "prior": {"name": "prior", "shape": ["batch", len(GARMENTS)], "garments": list(GARMENTS),
                  "values": "NaN unknown, 0 absent, 1 present"} if prior else None,
        "outputs": {"seg": ["batch", len(CLASSES), h, w], **({"cls": ["batch", len(GARMENTS)]} if cls else {})},
        "size": [h, w], **provenance,
        "onnx": {"file": Path(onnx_file).name, "sha256": onnx_sha256, "opset": opset},
    }


def write_model(onnx_file: Path, graph: bytes, card: dict) -> None:
    """Write the ONNX ``graph`` and its ``card`` together or not at all (:func:`storage.write_files`); the card must
    state the graph's SHA-256."""
    if card["onnx"]["sha256"] != hashlib.sha256(graph).hexdigest():
        raise ValueError(f"the card of {onnx_file} does not state the SHA-256 of its graph")
    Path(onnx_file).parent.mkdir(parents=True, exist_ok=True)
    write_files({Path(onnx_file): graph, card_path(onnx_file): json.dumps(card, indent=1)})


def read_card(onnx_file: str | Path) -> dict:
    """The card of an exported model; a clear error when the model or its card is missing, or the card is not one of
    these classes."""
    onnx_file = Path(onnx_file)
    if onnx_file.is_dir():
        raise ValueError(f"--model {onnx_file} is a folder: name the .onnx file that `clothparse export` wrote")
    if not onnx_file.is_file():
        raise FileNotFoundError(f"ONNX model not found: {onnx_file}")
    card_file = card_path(onnx_file)
    if not card_file.is_file():
        raise FileNotFoundError(f"{onnx_file} has no card beside it ({card_file.name}): export the model with "
                                "`clothparse export`, which writes both")
    try:
        card = json.loads(card_file.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{card_file} is not a model card (invalid JSON: {e})") from None
    if not isinstance(card, dict) or card.get("format") != CARD_FORMAT:
        raise ValueError(f"{card_file} is not a clothparse model card (format {CARD_FORMAT})")
    missing = [k for k in ("model", "classes", "input", "prior", "outputs", "onnx") if k not in card]
    if missing:
        raise ValueError(f"{card_file} is not a complete model card (no {', '.join(missing)})")
    classes = [c.get("name") for c in card.get("classes") or [] if isinstance(c, dict)]
    if classes != list(CLASSES):
        raise ValueError(f"{card_file}: the model's classes ({', '.join(map(str, classes))}) are not this library's "
                         f"({', '.join(CLASSES)})")
    return card


def _mismatch(onnx_file: Path, what: str) -> ValueError:
    return ValueError(f"{onnx_file} is not the model its card {card_path(onnx_file).name} describes: {what}; "
                      "export it again with `clothparse export`, which writes both")


def check_file(onnx_file: str | Path, card: dict) -> None:
    """Refuse an ONNX file whose SHA-256 is not the one its card states (another or a modified file)."""
    onnx_file = Path(onnx_file)
    stated = (card.get("onnx") or {}).get("sha256")
    if stated != file_sha256(onnx_file):
        raise _mismatch(onnx_file, f"its SHA-256 differs from the card's ({str(stated)[:12]}...)")


def _dims(shape) -> list:
    """A shape's fixed dimensions, a named (dynamic) one as None."""
    return [d if isinstance(d, int) else None for d in shape]


def check_graph(onnx_file: str | Path, card: dict, inputs: dict[str, list], outputs: dict[str, list]) -> None:
    """Refuse a graph whose inputs (names, shapes) or outputs (names, channels, size) are not the card's.
    ``inputs`` / ``outputs``: the graph's, name -> shape (a dynamic dimension as a name or None)."""
    onnx_file = Path(onnx_file)
    want_in = {"image": card["input"]["shape"], **({"prior": card["prior"]["shape"]} if card.get("prior") else {})}
    for kind, got, want in (("inputs", inputs, want_in), ("outputs", outputs, card["outputs"])):
        if list(got) != list(want):
            raise _mismatch(onnx_file, f"the graph's {kind} are {', '.join(got) or 'none'}, the card's "
                                       f"{', '.join(want)}")
        for name, shape in got.items():
            g, w = _dims(shape), _dims(want[name])
            if len(g) != len(w) or any(a is not None and b is not None and a != b for a, b in zip(g[1:], w[1:])):
                raise _mismatch(onnx_file, f"the graph's {name!r} is {_shape(shape)}, the card's {_shape(want[name])}")


def _shape(shape) -> str:
    return "(" + ", ".join(str(d) if isinstance(d, int) else "batch" for d in shape) + ")"

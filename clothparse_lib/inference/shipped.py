"""The model that ships with the package: the published run's extended model, exported with compact weights
(float16, the largest matrices int8; :func:`evaluation.ship.ship_model` writes it), in ``clothparse_lib/shipped/``
(``model.onnx`` and its card ``model.json``; package data, so ``pip install`` carries them). ``clothparse predict``
without ``--checkpoint`` or ``--model``, :meth:`parsing.Parser.default` and the book's "Try it" page run it.

Loading it checks the file against its card (:func:`card.check_file`: the SHA-256). Nothing here imports torch.
"""
from __future__ import annotations

from pathlib import Path

from .card import check_file, read_card

__all__ = ["SHIPPED_DIR", "MODEL_FILE", "SHIP_COMMAND", "NoShippedModel", "shipped_file", "shipped_model", "describe"]

SHIPPED_DIR = Path(__file__).resolve().parents[1] / "shipped"  # tests point it elsewhere
MODEL_FILE = "model.onnx"
SHIP_COMMAND = "clothparse export --ship --checkpoint extended --profile PROFILE"  # README: "Deploying"


class NoShippedModel(FileNotFoundError):
    def __init__(self, folder: Path):
        super().__init__(f"no model ships with this version yet ({folder / MODEL_FILE} is missing): make one from a "
                         f"trained run with `{SHIP_COMMAND}`, or give --checkpoint (a trained model) or "
                         "--backend onnx --model FILE.onnx (an exported one)")


def shipped_file() -> Path:
    """Where the shipped model is, or would be."""
    return SHIPPED_DIR / MODEL_FILE


def shipped_model() -> tuple[Path, dict]:
    """The shipped model's file and card, the file checked against the card; :class:`NoShippedModel` when none
    ships."""
    path = shipped_file()
    if not path.is_file():
        raise NoShippedModel(path.parent)
    card = read_card(path)
    check_file(path, card)
    return path, card


def describe(card: dict) -> str:
    """A model in one line: its name, training (profile, seed) and test IoU as its card states them."""
    test = card.get("test") or {}
    iou = f", test IoU excl. bg {100 * test['iou_excl_bg']:.1f} % ({test.get('data') or 'test'} data)" \
        if "iou_excl_bg" in test else ""
    return f"{card['model']} ({card.get('profile')} profile, seed {card.get('seed')}{iou})"

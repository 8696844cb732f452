"""The checkpoint store: atomic writes, integrity digests, provenance, and loading a trained model.

Below the training loop: parsing a photo or evaluating a model loads checkpoints without fastai's
training stack. A checkpoint is ``{format, manifest (JSON), state, model, digest}`` plus, for
``last.pt``, the optimizer, random generators and fastai's per-fit state: it carries its own manifest.
``manifest.json`` beside it is a readable copy written after the checkpoints (the manifest, the state, each
file's SHA-256); a checkpoint differing from it is refused on loading as modified, unless it is newer than the copy
(a run stopped between the two writes), so that a kill at any instant leaves a folder that loads and resumes.
Checkpoints are written whole or not at all (:mod:`..storage`; a full disk is one line, :class:`storage.DiskFull`).
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import pickle
from pathlib import Path

import torch
from fastai.torch_core import default_device

from ..profiles import TrainSettings
from ..storage import file_sha256, write_atomic, write_files
from .factory import build_model

__all__ = ["CHECKPOINT_FORMAT", "state_digest", "checkpoint_digest", "make_checkpoint", "save_checkpoints",
           "atomic_save", "write_json", "is_finished", "StaleCheckpoint", "read_checkpoint", "load_model"]


CHECKPOINT_FORMAT = 2  # 2: the digest covers the manifest and the state too


def state_digest(state_dict: dict) -> str:
    """SHA-256 of a state dict's names and tensor bytes (checked on loading: a modified weight is refused)."""
    h = hashlib.sha256()
    for name, t in state_dict.items():
        h.update(name.encode() + b"\0" + t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def checkpoint_digest(ckpt: dict) -> str:
    """SHA-256 of what a checkpoint states: format, manifest, training state and weights (checked on loading)."""
    h = hashlib.sha256(json.dumps([ckpt["format"], ckpt["manifest"], ckpt["state"]], sort_keys=True).encode())
    h.update(state_digest(ckpt["model"]).encode())
    return h.hexdigest()


def make_checkpoint(manifest: dict, state: dict, weights: dict, **extra) -> dict:
    """A checkpoint as :func:`read_checkpoint` accepts it (``extra``: optimizer and random generators)."""
    ckpt = {"format": CHECKPOINT_FORMAT, "manifest": json.dumps(manifest), "state": dict(state), "model": weights}
    return {**ckpt, "digest": checkpoint_digest(ckpt), **extra}


def save_checkpoints(files: dict[Path, dict]) -> dict[str, str]:
    """``torch.save`` each object to its path, every file written or none (:func:`storage.write_files`); returns
    each file's SHA-256 by name."""
    data = {}
    for path, obj in files.items():
        buffer = io.BytesIO()
        torch.save(obj, buffer)
        data[Path(path)] = buffer.getbuffer()
    write_files(data)
    return {path.name: hashlib.sha256(d).hexdigest() for path, d in data.items()}


def atomic_save(obj, path: Path) -> str:
    """torch.save to ``path`` atomically; returns the file's SHA-256."""
    return save_checkpoints({Path(path): obj})[Path(path).name]


def write_json(obj, path: Path) -> None:
    write_atomic(path, json.dumps(obj, indent=1, default=str))


def is_finished(folder: Path) -> bool:
    """Whether the model trained in ``folder`` completed its schedule: ``last.pt``'s own state (phase and
    epochs done) against the settings it was trained with."""
    try:
        ckpt = read_checkpoint(Path(folder) / "last.pt")
    except (FileNotFoundError, ValueError):
        return False
    m, state = ckpt["manifest"], ckpt["state"]
    end = max(((p.number, p.epochs) for p in TrainSettings.from_dict(m["settings"]).phases(m["size"]) if p.epochs),
              default=(1, 0))
    return (state["phase"], state["epochs_done"]) >= end


class StaleCheckpoint(ValueError):
    """A checkpoint of an older format."""


def read_checkpoint(path: Path, verify: bool = True) -> dict:
    """A checkpoint written by :class:`Checkpointer`, loaded safely; a clear error if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # torch refuses anything but tensors and plain values
        raise ValueError(f"{path} is not a clothparse checkpoint (it is not only tensors and plain values); "
                         "it will not be unpickled, as that could run code") from None
    except Exception as e:  # truncated or corrupt files fail in many ways
        raise ValueError(f"{path} is not a readable clothparse checkpoint ({type(e).__name__}: "
                         f"{(str(e).splitlines() or [''])[0]})") from None
    if isinstance(ckpt, dict) and isinstance(ckpt.get("format"), int) and ckpt["format"] < CHECKPOINT_FORMAT:
        raise StaleCheckpoint(f"{path} was written by an older clothparse (checkpoint format {ckpt['format']}, "
                              f"now {CHECKPOINT_FORMAT}): train the model again")
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT or \
            not {"manifest", "state", "model"} <= set(ckpt):
        raise ValueError(f"{path} is not a clothparse checkpoint (format {CHECKPOINT_FORMAT})")
    if verify:
        _check_listed(path, ckpt["state"])
    if verify and ckpt.get("digest") != checkpoint_digest(ckpt):
        raise ValueError(f"checkpoint {path} was modified: its manifest, state or weights do not match the digest "
                         "written with them")
    ckpt["manifest"] = json.loads(ckpt["manifest"])
    return ckpt


def _check_listed(path: Path, state: dict) -> None:
    """Refuse a checkpoint whose SHA-256 differs from the one ``manifest.json`` lists, unless the checkpoint is newer
    than that copy (written after it by a run stopped before it rewrote ``manifest.json``; a copy stating no state
    predates every checkpoint)."""
    manifest_file = path.parent / "manifest.json"
    if not manifest_file.exists():
        return
    listed = json.loads(manifest_file.read_text())
    expected = listed.get("checkpoints", {}).get(path.name)
    newer = _progress(state) > _progress(listed.get("state") or {})
    if expected and expected != file_sha256(path) and not newer:
        raise ValueError(f"checkpoint {path} was modified after training wrote it (SHA-256 differs from {manifest_file})")


def _progress(state: dict) -> tuple[int, int]:
    return state.get("phase", 0), state.get("epochs_done", 0)


def load_model(path: Path, device=None) -> torch.nn.Module:
    """The trained model of a checkpoint, in eval mode, with its manifest as ``model.manifest``."""
    ckpt = read_checkpoint(path)
    m = ckpt["manifest"]
    with _quiet_random_init():
        model = build_model(m["model"], encoder=m["settings"]["encoder"], weights=None, img_size=tuple(m["size"]))
    try:
        model.load_state_dict(ckpt["model"], strict=True)
    except RuntimeError as e:
        raise ValueError(f"{path}: weights do not fit model {m['model']!r} ({str(e).splitlines()[0]})") from None
    model.manifest = m
    return model.to(device or default_device()).eval()


@contextlib.contextmanager
def _quiet_random_init():
    import warnings

    from .encoders import RandomInitWarning
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomInitWarning)
        yield

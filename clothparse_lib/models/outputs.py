"""The one output type of every model: segmentation logits, and ClassBranch and BBbranch logits where it has them."""
from __future__ import annotations

import torch

__all__ = ["ModelOutput"]


class ModelOutput(tuple):
    """``(seg, cls, box)``: ``seg`` (B, C, H, W) segmentation logits, ``cls`` (B, 8) ClassBranch logits, ``box``
    (B, 8, 4) BBbranch logits; ``cls`` and ``box`` are None where the model has no such head.

    ``ModelOutput(seg, cls, box)`` or ``ModelOutput([seg, cls, box])``. A tuple, so that fastai treats it as a batch of
    tensors: its ``apply`` (``to_float``, ``to_detach``, ``to_device``; ``to_concat``) rebuilds it as
    ``type(out)([f(t) for t in out])``. An absent head travels as ``()``, which ``apply`` passes through unchanged
    (``to_float`` would fail on None); read the heads by name.
    """

    __slots__ = ()

    def __new__(klass, seg, cls=None, box=None, /):
        if isinstance(seg, (list, tuple)):  # fastai's rebuild: one sequence
            seg, cls, box = seg
        return super().__new__(klass, (seg, () if cls is None else cls, () if box is None else box))

    @property
    def seg(self) -> torch.Tensor:
        return self[0]

    @property
    def cls(self) -> torch.Tensor | None:
        return None if isinstance(self[1], tuple) else self[1]

    @property
    def box(self) -> torch.Tensor | None:
        return None if isinstance(self[2], tuple) else self[2]

    def heads(self) -> tuple:
        """``(seg, cls, box)`` with None for the heads the model lacks."""
        return self.seg, self.cls, self.box

    def __repr__(self) -> str:
        shape = lambda t: None if t is None else tuple(t.shape)  # noqa: E731
        return f"ModelOutput(seg={shape(self.seg)}, cls={shape(self.cls)}, box={shape(self.box)})"

"""The training augmentation's settings, shared by fastai's pipeline (:mod:`.loaders`) and the in-memory batches
(:mod:`.device`), which draws the same distributions."""
from __future__ import annotations

__all__ = ["AUGMENTATION"]

# Mild augmentation, as in the paper: flip, lighting +-10 %, rotation up to 10 degrees; no zoom, no warp.
AUGMENTATION = dict(do_flip=True, flip_vert=False, max_rotate=10.0, max_lighting=0.1, max_zoom=1.0,
                    max_warp=0.0, p_affine=0.75, p_lighting=0.75, pad_mode="zeros")

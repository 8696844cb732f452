"""Class priors: what is known about the garments of an image, injected through the ClassBranch (Table 5, Figure 5).

A prior is ``(B, 8)`` (or ``(8,)``) with NaN = unknown and 0/1 = known absent/present (values in between are taken
as probabilities). Known entries replace the ClassBranch logits before they enter the segmentation; the class
logits a model returns are the ones actually used. Which models take one: :data:`models.PRIOR_MODELS`.
"""
from __future__ import annotations

import torch

from ..inference.prior import check_prior
from ..taxonomy import GARMENTS, known_garments

__all__ = ["make_class_prior", "apply_class_prior"]


def make_class_prior(present=(), absent=(), batch_size: int = 1, base=None, device=None) -> torch.Tensor:
    """A (B, 8) class prior: NaN everywhere (unknown) except ``present`` garments (1) and ``absent`` ones (0).

    ``present``/``absent``: garment names (list or comma-separated string). ``base``: a prior to start from
    ((8,) or (B, 8), e.g. ``targets.presence_targets(masks)`` for full ground-truth injection).
    """
    known = torch.from_numpy(known_garments(present, absent)).to(device)
    if base is None:
        prior = torch.full((batch_size, len(GARMENTS)), float("nan"), device=device)
    else:
        prior = torch.as_tensor(base, dtype=torch.float32, device=device).expand(batch_size, len(GARMENTS)).clone()
    return torch.where(torch.isnan(known), prior, known)


def apply_class_prior(logits: torch.Tensor, prior, limit: float) -> torch.Tensor:
    """ClassBranch logits with the known entries of ``prior`` (NaN = unknown) replaced by logit(prior).

    Known probabilities p map to ``logit(p)`` clipped to +-``limit`` (0 -> -limit, 1 -> +limit).
    """
    if prior is None:
        return logits
    prior = torch.as_tensor(prior, dtype=logits.dtype, device=logits.device)
    if prior.shape[-1] != logits.shape[-1]:
        raise ValueError(f"class prior has {prior.shape[-1]} entries per image, the ClassBranch {logits.shape[-1]}")
    prior = prior.expand_as(logits)
    if not torch.compiler.is_compiling():  # data-dependent: eager only
        check_prior(prior)
    return torch.where(torch.isnan(prior), logits, torch.logit(prior).clamp(-limit, limit))

"""One factory for every model of the book: :func:`build_model`, and what fastai's training needs of them."""
from __future__ import annotations

from torch import nn

from ..data.cache import parse_size
from ..taxonomy import N_CLASSES
from . import encoders as E
from .baselines import BASELINES, build_baseline
from .unet import UNET_VARIANTS, build_unet

__all__ = ["build_model", "MODEL_NAMES", "model_splitter", "count_parameters"]

MODEL_NAMES: tuple[str, ...] = (*UNET_VARIANTS, *BASELINES)


def build_model(name: str, encoder: str = "resnet34", weights=None, n_classes: int = N_CLASSES,
                img_size=(288, 192)) -> nn.Module:
    """Build one of :data:`MODEL_NAMES` on ``encoder`` (:data:`profiles.ENCODERS`).

    ``weights``: None (random encoder, with a loud :class:`encoders.RandomInitWarning`), ``"imagenet"``
    (resnet34: torchvision download; efficientnet-lite0: the registry package's file, offline) or a path to a
    local state dict. ``img_size`` = (H, W) or ``"HxW"``, multiples of 32. The model comes back in train mode with
    ``model_name``, ``encoder_name``, ``img_size``, ``normalization`` ((mean, std) for [0, 1] RGB) and
    ``supports_prior`` set; every model returns a :class:`outputs.ModelOutput`.
    """
    if name not in MODEL_NAMES:
        raise ValueError(f"unknown model {name!r}; valid models: {', '.join(MODEL_NAMES)}")
    E.check_encoder(encoder)
    img_size = parse_size(img_size)
    if n_classes < 2:
        raise ValueError("n_classes counts the background: at least 2")
    state_dict = E.pretrained_state_dict(encoder, weights)
    if name in BASELINES:
        model = build_baseline(name, encoder, n_classes, state_dict)
    else:
        body = E.fastai_body(E.classifier_network(encoder, state_dict), encoder)
        model = build_unet(body, n_classes, img_size, UNET_VARIANTS[name])
    model.model_name, model.encoder_name, model.img_size = name, encoder, img_size
    model.normalization = E.encoder_stats(encoder)
    return model.train()


def model_splitter(model: nn.Module) -> list[list[nn.Parameter]]:
    """fastai ``splitter``: [encoder parameters, all others], for every model of :func:`build_model`.

    ``learn.freeze()`` then freezes the encoder, and fastai's ``train_bn=True`` keeps its BatchNorms trainable.
    """
    enc = list(model.encoder.parameters())
    ids = {id(p) for p in enc}
    return [enc, [p for p in model.parameters() if id(p) not in ids]]


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)

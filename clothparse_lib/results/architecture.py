"""Chapter Architecture: Figure 1's channels against the built model, parameters and multiply-adds."""
from __future__ import annotations

import warnings

import pandas as pd
import torch

from ..models import MODEL_NAMES, build_model, count_parameters

__all__ = ["FIGURE1_CHANNELS", "MACS", "architecture_table", "cost_ratios", "decoder_channels"]


# Figure 1: output channels of the plain U-Net's decoder, middle conv to the 1x1 conv to the classes.
FIGURE1_CHANNELS = (512, 512, 384, 256, 96, 99, 9)


MACS = "multiply-adds per image (G)"  # a column of architecture_table


def _untrained(name: str, encoder: str, size: tuple[int, int]) -> torch.nn.Module:
    """A model with random weights, for shapes and counts only (the random-init warning is expected here)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return build_model(name, encoder=encoder, weights=None, img_size=size)


def architecture_table(size: tuple[int, int], encoder: str = "resnet34", names=MODEL_NAMES) -> pd.DataFrame:
    """Parameters of every model at ``size`` and the multiply-adds of one forward pass on one image (PyTorch's
    FLOP counter / 2), counted on the meta device: shapes only, no weights, no compute."""
    from torch.utils.flop_counter import FlopCounterMode

    rows = []
    for name in names:
        with torch.device("meta"):
            model = _untrained(name, encoder, size).eval()
            with torch.no_grad(), FlopCounterMode(display=False) as counter:
                model(torch.zeros(1, 3, *size))
        rows.append({"model": name, "parameters (M)": count_parameters(model) / 1e6,
                     MACS: counter.get_total_flops() / 2e9,
                     "prior input": bool(getattr(model, "supports_prior", False))})
    return pd.DataFrame(rows).set_index("model")


def cost_ratios(size: tuple[int, int], encoder: str) -> dict[str, float]:
    """From :func:`architecture_table`'s multiply-adds at ``size``: ``extended_extra_pct``, what the Extended U-Net
    adds to the plain U-Net on ``encoder`` (%), and ``resnet34_over_encoder``, the plain U-Net's on ResNet34 over
    its on ``encoder``."""
    ours = architecture_table(size, encoder, ("plain_unet", "extended"))[MACS]
    resnet34 = architecture_table(size, "resnet34", ("plain_unet",))[MACS]
    return {"extended_extra_pct": 100 * (ours["extended"] / ours["plain_unet"] - 1),
            "resnet34_over_encoder": resnet34["plain_unet"] / ours["plain_unet"]}


@torch.no_grad()
def decoder_channels(size: tuple[int, int] = (288, 192), encoder: str = "resnet34") -> pd.DataFrame:
    """Figure 1 against the built plain U-Net: each decoder layer's output shape beside the paper's channels."""
    model = _untrained("plain_unet", encoder, size).eval()
    shapes = []
    hooks = [layer.register_forward_hook(lambda m, i, o: shapes.append((type(m).__name__, *o.shape[1:])))
             for layer in model.layers[3:]]
    model(torch.zeros(1, 3, *size))
    for h in hooks:
        h.remove()
    table = pd.DataFrame(shapes, columns=["layer", "channels", "height", "width"])
    # Figure 1 draws the middle conv, the 4 U-Net blocks, the merge with the input and the 1x1 conv to the
    # classes; upsampling, resizing, the final residual block and the cast keep the channels
    table = table[table["layer"].isin(["Sequential", "UnetBlock", "MergeLayer", "ConvLayer"])].reset_index(drop=True)
    figure = pd.Series(FIGURE1_CHANNELS, dtype="Int64").reindex(table.index)
    return table.assign(**{"Figure 1": figure, "match": table["channels"].eq(figure)})

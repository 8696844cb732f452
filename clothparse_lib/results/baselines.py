"""Chapter Baselines: Table 2 (the models compared on the refined data)."""
from __future__ import annotations

import pandas as pd

from .run import Run
from .tables import models_table

__all__ = ["BASELINES", "table2"]


# Table 2's rows: this run's label -> (model, the paper's row label or None).
BASELINES = {"FPN": ("fpn", "FPN"), "DeepLabV3": ("deeplabv3", "DeepLabV3"), "DeepLabV3+": ("deeplabv3plus", "DeepLabV3+"),
             "Plain U-Net": ("plain_unet", "Plain U-Net"), "smp Unet": ("smp_unet", None), "Our model": ("extended", "Our model")}


def table2(run: Run) -> pd.DataFrame:
    return models_table(run, BASELINES)

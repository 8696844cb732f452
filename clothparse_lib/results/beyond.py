"""Chapter Beyond: the seed spread, photos for ``clothparse predict`` and the garment-tagging table."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from PIL import Image

from ..refinement.refine import RefinedSource
from .run import Run
from .tables import score_row

__all__ = ["seed_spread", "tagging_table", "export_photos"]


def seed_spread(run: Run, models=("plain_unet", "extended"), seeds: tuple[int, ...] | None = None) -> pd.DataFrame:
    """The headline IoUs (%) of each model for each seed of the profile (or ``seeds``), same data and split;
    rows (model, "seed N"), then (model, "mean") and (model, "std") when there are several seeds."""
    seeds = tuple(seeds or run.profile.spread_seeds)
    frames = {}
    for model in models:
        table = pd.DataFrame({f"seed {s}": {k: 100 * v for k, v in score_row(run.ensure(model, seed=s)).items()
                                            if k in ("iou_excl_bg", "iou_overall", "iou_mask")} for s in seeds}).T
        if len(seeds) > 1:
            table.loc["mean"], table.loc["std"] = table.mean(), table.iloc[: len(seeds)].std(ddof=1)
        frames[model] = table
    return pd.concat(frames, names=["model", "seed"])


def tagging_table(folder: str | Path) -> pd.DataFrame:
    """The garments ``clothparse predict`` found in each photo (its JSON files in ``folder``)."""
    rows = []
    for path in sorted(Path(folder).glob("*.json")):
        for g in json.loads(path.read_text())["garments"]:
            rows.append({"photo": path.stem, "garment": g["name"], "colour": g["color_name"], "hex": g["dominant_color"],
                         "share of photo (%)": 100 * g["pixel_share"],
                         "presence probability": g["presence_probability"]})
    return pd.DataFrame(rows, columns=["photo", "garment", "colour", "hex", "share of photo (%)", "presence probability"])


def export_photos(run: Run, n: int = 4, folder=None) -> list:
    """The first ``n`` test photos of the refined data at full resolution, as JPEG files for
    ``clothparse predict`` (default folder: ``<run>/photos``)."""
    folder = Path(folder or run.run_dir / "photos")
    folder.mkdir(parents=True, exist_ok=True)
    data = run.data("refined")
    ids = data.split.loc[data.split["split"] == "test", "image_id"].astype(str).sort_values().head(n)
    source = RefinedSource(run.source(), run.refined_index())
    paths = []
    for image_id in ids:
        path = folder / f"{Path(image_id).name}.jpg"
        Image.fromarray(source.read(image_id).image).save(path, quality=92)
        paths.append(path)
    return paths

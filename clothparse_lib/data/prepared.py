"""One call from a profile to a ready data set: source -> cache at the profile's size -> saved split."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .. import settings
from ..profiles import Profile, get_profile
from . import Cache, build_cache, class_stats, load_split, make_split, open_source, save_split, split_summary

__all__ = ["PreparedData", "prepare_dataset"]


@dataclass
class PreparedData:
    profile: Profile
    cache: Cache
    split: pd.DataFrame  # image_id, split
    split_path: Path

    def stats(self) -> pd.DataFrame:
        return class_stats(self.cache)

    def split_summary(self) -> pd.DataFrame:
        return split_summary(self.cache.index, self.split)


def prepare_dataset(profile: str | Profile, data_dir=None, run_dir=None, cache_dir=None, size=None,
                    workers=None, progress: bool = True, source=None, base_split: pd.DataFrame | None = None,
                    split_name: str = "split", **source_params) -> PreparedData:
    """Cache the profile's data set (or ``source``) and write (or reuse) its split in the run folder.

    The split is re-made when the cached image ids differ from the saved split's ids. With
    ``base_split`` (e.g. the split of the unrefined data), the split is that one restricted to the
    cached ids, so that a derived data set keeps every image in the part it had.
    """
    profile = get_profile(profile) if isinstance(profile, str) else profile
    if source is None:
        source = open_source(profile.source, data_dir, **{**profile.source_params, **source_params})
    cache = build_cache(source, size or profile.size, root=cache_dir, workers=workers, progress=progress)
    run_dir = settings.run_dir(profile.name, run_dir)
    split_path = run_dir / f"{split_name}.csv"
    if base_split is not None:
        split = base_split[base_split["image_id"].isin(cache.index["image_id"])].reset_index(drop=True)
        save_split(split, split_path)
        return PreparedData(profile, cache, split, split_path)
    if split_path.exists():
        split = load_split(split_path)
        if sorted(split["image_id"]) == sorted(cache.index["image_id"]):
            return PreparedData(profile, cache, split, split_path)
    split = make_split(cache.index, seed=profile.split_seed)
    save_split(split, split_path)
    return PreparedData(profile, cache, split, split_path)

"""One call from a profile to a ready data set: source -> cache at the profile's size -> saved split; the same
images and split at another size for progressive resizing (:meth:`PreparedData.at`, a cache per size)."""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from .. import settings
from ..profiles import Profile, get_profile
from . import Cache, Source, build_cache, class_stats, load_split, make_split, open_source, save_split, split_summary

__all__ = ["PreparedData", "prepare_dataset"]


@dataclass
class PreparedData:
    profile: Profile
    cache: Cache
    split: pd.DataFrame  # image_id, split
    split_path: Path
    source: Source | None = None  # what the cache was built from (None: :meth:`at` only gives the cache's own size)

    def at(self, size, progress: bool = False) -> "PreparedData":
        """The same images and split at ``size`` (height, width), cached beside this data's cache."""
        if tuple(size) == self.cache.size:
            return self
        if self.source is None:
            raise ValueError(f"the data is cached at {self.cache.size[0]}x{self.cache.size[1]} only (no source given)")
        cache = build_cache(self.source, tuple(size), root=self.cache.path.parent, progress=progress)
        return replace(self, cache=cache)

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
        return PreparedData(profile, cache, split, split_path, source)
    if split_path.exists():
        split = load_split(split_path)
        if sorted(split["image_id"]) == sorted(cache.index["image_id"]):
            return PreparedData(profile, cache, split, split_path, source)
    split = make_split(cache.index, seed=profile.split_seed)
    save_split(split, split_path)
    return PreparedData(profile, cache, split, split_path, source)

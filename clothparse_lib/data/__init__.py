"""Data readers (iMaterialist 2019, CCP, synthetic), the training-resolution cache and the split."""
from __future__ import annotations

from pathlib import Path

from .. import settings
from .base import DataError, Sample, SkipReport, Source, index_row
from .cache import Cache, build_cache, class_stats, open_cache, parse_size
from .split import PAPER_FRACTIONS, load_split, make_split, save_split, split_summary

SOURCES = ("synthetic", "ccp", "imaterialist")


def open_source(name: str, data_dir: str | Path | None = None, **params) -> Source:
    """A reader by name; ``ccp`` and ``imaterialist`` live under the data folder (``ccp/``, ``imaterialist/``)."""
    if name == "synthetic":
        from .synthetic import SyntheticSource
        return SyntheticSource(**params)
    if name == "ccp":
        from .ccp import CCPSource, locate
        return CCPSource(locate(data_dir), **params)
    if name == "imaterialist":
        from .imaterialist import IMaterialistSource
        return IMaterialistSource(settings.data_dir(data_dir) / "imaterialist", **params)
    raise ValueError(f"unknown source {name!r}; known: {', '.join(SOURCES)}")


__all__ = ["DataError", "Sample", "SkipReport", "Source", "index_row", "Cache", "build_cache", "class_stats",
           "open_cache", "parse_size", "PAPER_FRACTIONS", "load_split", "make_split", "save_split",
           "split_summary", "open_source", "SOURCES"]

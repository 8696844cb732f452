"""``clothparse prepare`` and ``clothparse download``: the data."""
from __future__ import annotations

from .. import settings
from .checks import check_count, run_dir

__all__ = ["prepare", "download"]


def prepare(args) -> int:
    check_count(args.workers, "--workers")
    from ..data.prepared import prepare_dataset

    prepared = prepare_dataset(args.profile, data_dir=args.data_dir, run_dir=run_dir(args), cache_dir=args.cache_dir,
                               size=args.size, workers=args.workers, progress=not args.quiet)
    cache, manifest = prepared.cache, prepared.cache.manifest
    print(f"profile {prepared.profile.name}: {len(cache)} images of {manifest['source']} cached at "
          f"{cache.size[0]}x{cache.size[1]} in {cache.path}")
    for key in ("skipped_by_reader", "skipped_while_caching"):
        report = manifest.get(key)
        if report and report["total"]:
            print(f"{key.replace('_', ' ')}: {report['total']} {report['counts']}")
            for first in report.get("first", {}).values():  # (a cache made before these were kept: none)
                print(f"  e.g. {first}")
    print("\nper-class image counts and pixel shares (at the cache size):")
    print(prepared.stats().round(2).to_string())
    print(f"\nsplit ({prepared.split_path}):")
    print(prepared.split_summary().to_string())
    return 0


def download(args) -> int:
    from ..data import ccp

    target = ccp.download(settings.data_dir(args.data_dir))
    print(f"CCP is in {target}")
    return 0

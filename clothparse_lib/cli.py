"""The ``clothparse`` command line."""
from __future__ import annotations

import argparse
import sys

from . import settings


def _prepare(args) -> int:
    from .dataset import prepare_dataset

    prepared = prepare_dataset(args.profile, data_dir=args.data_dir, run_dir=args.run_dir, cache_dir=args.cache_dir,
                               size=args.size, workers=args.workers, progress=not args.quiet)
    cache, manifest = prepared.cache, prepared.cache.manifest
    print(f"profile {prepared.profile.name}: {len(cache)} images of {manifest['source']} cached at "
          f"{cache.size[0]}x{cache.size[1]} in {cache.path}")
    for key in ("skipped_by_reader", "skipped_while_caching"):
        report = manifest.get(key)
        if report and report["total"]:
            print(f"{key.replace('_', ' ')}: {report['total']} {report['counts']}")
    print("\nper-class image counts and pixel shares (at the cache size):")
    print(prepared.stats().round(2).to_string())
    print(f"\nsplit ({prepared.split_path}):")
    print(prepared.split_summary().to_string())
    return 0


def _download(args) -> int:
    from .data import ccp

    target = ccp.download(settings.data_dir(args.data_dir))
    print(f"CCP is in {target}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="clothparse", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("prepare", help="cache a profile's data set at its training size, print its statistics, write its split")
    p.add_argument("--profile", default="demo", help="smoke (synthetic), demo (CCP) or paper (iMaterialist)")
    p.add_argument("--data-dir", help=f"folder holding ccp/ or imaterialist/ (default ${settings.DATA_DIR_VAR})")
    p.add_argument("--cache-dir", help=f"where caches go (default ${settings.CACHE_DIR_VAR} or ~/.cache/clothparse/data)")
    p.add_argument("--run-dir", help="run folder for the split (default runs/<profile>)")
    p.add_argument("--size", help="HEIGHTxWIDTH, multiples of 32 (default: the profile's)")
    p.add_argument("--workers", type=int, help="reader processes (default: all cores)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_prepare)

    d = sub.add_parser("download", help="download a public data set (needs internet)")
    d.add_argument("dataset", choices=["ccp"])
    d.add_argument("--data-dir", help=f"destination folder (default ${settings.DATA_DIR_VAR})")
    d.set_defaults(func=_download)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, RuntimeError, FileNotFoundError) as e:
        print(f"clothparse {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

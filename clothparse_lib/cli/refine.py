"""``clothparse refine`` and ``clothparse persons``: the paper's data refinement and its person detector."""
from __future__ import annotations

import sys

from .checks import run_dir

__all__ = ["refine", "persons"]


def refine(args) -> int:
    from ..results import refinement
    from ..results.run import Run

    run = Run.open(args.profile, run_dir(args), args.data_dir, device=args.device, progress=not args.quiet)
    review = int((run.refined_index()["status"] == "review").sum())
    print(refinement.summary(run).to_string())
    if review:
        refinement.review_gallery(run).savefig(run.run_dir / "review.png", dpi=80)
    print(f"refined index: {run.run_dir / 'refined_index.csv'}; "
          f"review list ({review} images): {run.run_dir / 'review.csv'}")
    return 0


def persons(args) -> int:
    """Print ``path<TAB>persons`` per image; unreadable images go to stderr and make the exit code 1."""
    from ..refinement.persons import detect_many, make_detector

    settings = {}
    if args.threshold is not None:
        settings["score_threshold"] = args.threshold
    if args.backend == "maskrcnn" and args.weights:
        settings["weights"] = args.weights
    elif args.weights:
        raise ValueError("--weights applies to the maskrcnn backend only")
    run = detect_many(make_detector(args.backend, **settings), args.images, cache_file=args.cache, progress=None)
    for row in run.table.itertuples():
        if isinstance(row.error, str):
            print(f"clothparse persons: {row.key}: {row.error}", file=sys.stderr)
        else:
            print(f"{row.key}\t{int(row.persons)}")
    return 1 if run.skipped.total else 0

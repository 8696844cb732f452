"""``clothparse book run | publish | build | references`` and ``clothparse table1``: the book's chapters and
tables."""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from .. import runfolder, settings
from ..profiles import DRY_RUN_SUFFIX, get_profile
from .checks import check_count, run_dir

__all__ = ["run", "publish", "build", "references", "table1"]


def run(args) -> int:
    import json

    from ..book.runner import ChapterFailed, run_book
    from ..data.ccp import locate

    def value(text):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text

    check_count(args.jobs, "--jobs")
    t = time.perf_counter()
    profile = get_profile(args.profile + DRY_RUN_SUFFIX if args.dry_run else args.profile)
    if profile.source == "ccp":  # fetched here (progress bar in the terminal) when it is missing
        locate(args.data_dir)
    try:
        results = run_book(profile, runs_dir=args.runs_dir, data_dir=args.data_dir, start=args.start,
                           force=args.force, parameters={k: value(v) for k, v in args.parameter}, jobs=args.jobs,
                           wait=args.wait, run_dir=args.run_dir)
    except ChapterFailed as e:
        print(f"clothparse book run: {e}", file=sys.stderr)
        return 1
    ran = [r.chapter for r in results if r.status == "executed"]
    folder = settings.run_dir(profile.name, args.run_dir, args.runs_dir)
    print(f"book ({profile.name}): {len(ran)} chapter(s) executed, {len(results) - len(ran)} unchanged, "
          f"{time.perf_counter() - t:.0f} s; executed chapters in {runfolder.book_dir(folder)} "
          f"(clothparse book publish --profile {profile.name} copies them into the book)")
    if args.html:
        return build(argparse.Namespace(lenient=False, repository=args.repository, branch=args.branch,
                                        profile=profile.name, runs_dir=args.runs_dir, run_dir=args.run_dir), t)
    return 0


def publish(args) -> int:
    from ..book.publish import publish

    folder = run_dir(args)
    for path in publish(folder):
        print(path)
    print(f"published the chapters of {folder} into the book: review them with git diff, then commit")
    return 0


def references(args) -> int:
    from ..book.chapters import ROOT
    from ..book.runner import write_references
    from ..data.ccp import locate

    locate(args.data_dir)  # fetched here (progress bar in the terminal) when it is missing
    for path in write_references(Path(args.dest) if args.dest else ROOT / "tests" / "notebooks", data_dir=args.data_dir):
        print(path)
    return 0


def build(args, t0: float | None = None) -> int:
    from ..book.chapters import ROOT
    from ..book.html import build_html
    from ..book.repository import repository_url

    t = t0 or time.perf_counter()
    folder = run_dir(args) if args.profile else None
    try:
        url = repository_url(ROOT, args.repository)
    except ValueError as e:
        print(f"clothparse book build: {e}", file=sys.stderr)
        return 2
    try:
        html = build_html(run_dir=folder, warnings_are_errors=not args.lenient, quiet=True, repository=url or "none",
                          branch=args.branch)
    except subprocess.CalledProcessError as e:
        print(f"clothparse book build: jupyter-book failed (exit {e.returncode}); see its messages above", file=sys.stderr)
        return 1
    print(f"repository buttons: {url}" if url else
          "repository buttons: none (no GitHub origin remote; --repository or $CLOTHPARSE_REPOSITORY_URL names one)")
    print(f"HTML: {html / 'index.html'}  ({time.perf_counter() - t:.0f} s)")
    return 0


def table1(args) -> int:
    from ..results.ablations import table1
    from ..results.run import Run

    run = Run.open(args.profile, run_dir(args), args.data_dir, device=args.device, progress=not args.quiet)
    table = table1(run)
    table.to_csv(run.run_dir / "table1.csv")
    print(table.round(2).T.to_string())
    return 0

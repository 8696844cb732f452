"""``clothparse book run | build | references`` and ``clothparse table1``: the book's chapters and tables."""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from ..profiles import DRY_RUN_SUFFIX, get_profile
from .checks import check_count, run_dir

__all__ = ["run", "build", "references", "table1"]


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
    profile = args.profile + DRY_RUN_SUFFIX if args.dry_run else args.profile
    if get_profile(profile).source == "ccp":  # fetched here (progress bar in the terminal) when it is missing
        locate(args.data_dir)
    try:
        results = run_book(profile, runs_dir=args.runs_dir, data_dir=args.data_dir, start=args.start,
                           force=args.force, parameters={k: value(v) for k, v in args.parameter}, jobs=args.jobs,
                           wait=args.wait, run_dir=args.run_dir)
    except ChapterFailed as e:
        print(f"clothparse book run: {e}", file=sys.stderr)
        return 1
    ran = [r.chapter for r in results if r.status == "executed"]
    print(f"book ({profile}): {len(ran)} chapter(s) executed, {len(results) - len(ran)} unchanged, "
          f"{time.perf_counter() - t:.0f} s")
    if args.html:
        return build(argparse.Namespace(lenient=False, repository=args.repository, branch=args.branch), t)
    return 0


def references(args) -> int:
    from ..book.runner import ROOT, write_references

    for path in write_references(Path(args.dest) if args.dest else ROOT / "tests" / "notebooks"):
        print(path)
    return 0


def build(args, t0: float | None = None) -> int:
    from ..book.repository import repository_url
    from ..book.runner import ROOT, build_html

    t = t0 or time.perf_counter()
    try:
        url = repository_url(ROOT, args.repository)
    except ValueError as e:
        print(f"clothparse book build: {e}", file=sys.stderr)
        return 2
    try:
        html = build_html(warnings_are_errors=not args.lenient, quiet=True, repository=url or "none", branch=args.branch)
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

"""The ``clothparse`` command line."""
from __future__ import annotations

import argparse
import errno
import subprocess
import sys
import time
from pathlib import Path

from . import settings
from .profiles import DRY_RUN_IMAGES, DRY_RUN_SIZE, DRY_RUN_SUFFIX, PROFILES, profile_names

__all__ = ["DATA_DIR_DEFAULT", "RUNS_DIR_HELP", "PROFILE_HELP", "WAIT_HELP", "PREDICT_OUTPUTS", "build_parser", "main"]


DATA_DIR_DEFAULT = f"${settings.DATA_DIR_VAR}, else {settings.DEFAULT_DATA_DIR}"
RUNS_DIR_HELP = f"folder of the run folders <runs-dir>/<profile> (default ${settings.RUNS_DIR_VAR}, else ./runs)"
PROFILE_HELP = "; ".join(f"{p.name}: {p.source} at {p.size[0]}x{p.size[1]}" for p in PROFILES.values()) + \
    f" (and NAME{DRY_RUN_SUFFIX}, a profile's dry run; default demo)"
WAIT_HELP = "wait for another process using the {} to end (default: stop, naming it)"


def _prepare(args) -> int:
    from .data.prepared import prepare_dataset

    prepared = prepare_dataset(args.profile, data_dir=args.data_dir, run_dir=_run_dir(args), cache_dir=args.cache_dir,
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


def _settings(args):
    """The profile's training settings with the command line's overrides."""
    from dataclasses import replace

    from .profiles import get_profile
    overrides = {k: v for k, v in {"encoder": args.encoder, "epochs_frozen": args.epochs_frozen,
                                   "epochs_unfrozen": args.epochs_unfrozen, "batch_size": args.batch_size,
                                   "lr_frozen": args.lr_frozen, "lr_unfrozen": args.lr_unfrozen}.items() if v is not None}
    if args.weights is not None:
        overrides["weights"] = None if args.weights == "none" else args.weights
    for key in ("precision", "data_on_device"):
        if getattr(args, key, None) is not None:
            overrides[key] = getattr(args, key)
    if getattr(args, "compile", False):
        overrides["compile"] = True
    if getattr(args, "no_cudnn_benchmark", False):
        overrides["cudnn_benchmark"] = False
    return replace(get_profile(args.profile).train, **overrides)


def _run_dir(args):
    return settings.run_dir(args.profile, args.run_dir, args.runs_dir)


def _train(args) -> int:
    from .data.prepared import prepare_dataset
    from .training.loop import train_model

    train_settings = _settings(args)
    ctx = None
    if args.distributed:  # rank 0 prepares the data first, the others then find it cached
        from .training.distributed import start
        ctx = start(args.device)
    try:
        if ctx is not None and not ctx.main:
            ctx.barrier()
        prepared = prepare_dataset(args.profile, data_dir=args.data_dir, run_dir=_run_dir(args),
                                   progress=not args.quiet and (ctx is None or ctx.main))
        if ctx is not None and ctx.main:
            ctx.barrier()
        for name in args.model:
            folder = train_model(prepared, name, train_settings, _run_dir(args), seed=args.seed,
                                 device=ctx.device if ctx is not None else args.device, resume=not args.no_resume,
                                 progress=not args.quiet, distributed=args.distributed, wait=args.wait)
            if ctx is None or ctx.main:
                print(f"{name}: checkpoints and history in {folder}")
    finally:
        if ctx is not None:
            ctx.close()
    return 0


def _evaluate(args) -> int:
    from .data.prepared import prepare_dataset
    from .evaluation.scores import evaluate, load_checked, save_evaluation

    prepared = prepare_dataset(args.profile, data_dir=args.data_dir, run_dir=_run_dir(args), progress=not args.quiet)
    for name in args.model:
        folder = _run_dir(args) / "models" / name
        model = load_checked(folder / f"{args.checkpoint}.pt", args.device, model=name, profile=prepared.profile.name)
        result = evaluate(model, prepared.cache, prepared.split, args.split, progress=not args.quiet)
        path = save_evaluation(result, folder, args.split, {"split": args.split, "checkpoint": args.checkpoint})
        scores = result.scores()["none"]
        print(f"{name} on {args.split} ({len(result.per_image)} images): IoU excl. bg {100 * scores['iou_excl_bg']:.2f}, "
              f"overall {100 * scores['iou_overall']:.2f}, mask {100 * scores['iou_mask']:.2f} -> {path}")
    return 0


def _predict(args) -> int:
    import json

    from PIL import Image

    from .data.base import DataError, read_rgb
    from .evaluation.parsing import Parser
    from .taxonomy import parse_classes

    present, absent = parse_classes(",".join(args.present)), parse_classes(",".join(args.absent))
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a folder")
    if args.backend is None and args.checkpoint is None and args.model is None:  # the model that ships
        from .evaluation.shipped import describe, shipped_model

        args.model, card = shipped_model()
        args.backend = "onnx"
        print(f"model: the shipped {describe(card)}")
    args.backend = args.backend or "torch"
    if args.backend == "onnx":
        if args.model is None or args.checkpoint is not None or args.device not in (None, "cpu"):
            raise ValueError("--backend onnx runs an exported model: --model FILE.onnx (`clothparse export` writes it), "
                             "on the CPU, without --checkpoint")
    elif args.checkpoint is None or args.model is not None:
        raise ValueError("the torch backend runs --checkpoint (a file or a model of the run folder); "
                         "--model FILE.onnx is for --backend onnx")
    stems = _output_stems([Path(p) for p in args.images], out)
    if args.backend == "onnx":
        parser = Parser.from_onnx(args.model)
    else:
        parser = Parser.from_checkpoint(args.checkpoint, args.device, run_dir=_run_dir(args))
    failed = 0
    for path, stem in zip(args.images, stems):
        try:
            image = read_rgb(Path(path), path)
            result = parser.parse(image, present, absent)
        except (DataError, OSError) as e:
            print(f"clothparse predict: {path}: {getattr(e, 'reason', e)}", file=sys.stderr)
            failed += 1
            continue
        out.mkdir(parents=True, exist_ok=True)  # only once there is something to write
        mask_file, overlay_file, info_file = (out / pattern.format(stem) for pattern in PREDICT_OUTPUTS)
        Image.fromarray(result.mask, mode="L").save(mask_file)
        Image.fromarray(result.overlay(image)).save(overlay_file, quality=90)
        info_file.write_text(json.dumps({"image": str(path), **result.to_dict()}, indent=1))
        found = ", ".join(f"{g.name} ({g.color_name})" for g in result.garments) or "no garment"
        print(f"{path}\t{found}" + (f"\t(written as {stem}.*)" if stem != Path(path).stem else ""))
    return 1 if failed else 0


def _export(args) -> int:
    from .evaluation.parsing import resolve_checkpoint
    from .models.export import card_path, export_onnx

    if (args.out is None) != args.ship or (args.photos and not args.ship):
        raise ValueError("export writes --out FILE.onnx, or with --ship the package's model (--photos: with --ship)")
    checkpoint = resolve_checkpoint(args.checkpoint, _run_dir(args))
    if args.ship:
        return _ship(checkpoint, args)
    card = export_onnx(checkpoint, args.out)
    inputs = "image" + (" and prior (B, 8; NaN unknown)" if card["prior"] else " (no prior input)")
    test = card["test"]
    iou = f"; test IoU excl. bg {100 * test['iou_excl_bg']:.2f}" if test and "iou_excl_bg" in test else ""
    size = Path(args.out).stat().st_size / 2**20
    print(f"{card['model']} ({checkpoint}) -> {args.out} ({size:.1f} MiB, {card['size'][0]}x{card['size'][1]}, inputs "
          f"{inputs}{iou}); card {card_path(args.out)}")
    return 0


def _ship(checkpoint: Path, args) -> int:
    from .evaluation.ship import agreement_photos, ship_model
    from .evaluation.shipped import describe, shipped_file

    photos = [Path(p) for p in args.photos] if args.photos else agreement_photos(checkpoint, args.data_dir)
    card = ship_model(checkpoint, photos)
    shipped = card["shipped"]
    found = shipped["agreement"]["without_prior"]
    print(f"{describe(card)} ({checkpoint}) -> {shipped_file()} ({shipped['size_mb']:.1f} MiB, float16 weights); "
          f"agrees with the float32 export on {100 * found['pixels']:.3f} % of the pixels of {len(photos)} photos "
          f"({100 * found['garment_lists']:.1f} % of the garment lists)")
    return 0


PREDICT_OUTPUTS = ("{}.png", "{}_overlay.jpg", "{}.json")


def _output_stems(images: list[Path], out: Path) -> list[str]:
    """A distinct output name per photo (``photo``, then ``photo-2`` ... for photos sharing a name);
    refuses an output folder holding input photos (outputs could replace them or their neighbours)."""
    if out.resolve() in {p.resolve().parent for p in images}:
        raise ValueError(f"--out {out} holds input photos, which the outputs could overwrite; "
                         "give the outputs a folder of their own")
    taken, stems = set(), []
    for path in images:
        stem, n = path.stem, 1
        while stem in taken:
            n += 1
            stem = f"{path.stem}-{n}"
        taken.add(stem)
        stems.append(stem)
    return stems


def _refine(args) -> int:
    from .results import refinement
    from .results.run import Run

    run = Run.open(args.profile, _run_dir(args), args.data_dir, device=args.device, progress=not args.quiet)
    review = int((run.refined_index()["status"] == "review").sum())
    print(refinement.summary(run).to_string())
    if review:
        refinement.review_gallery(run).savefig(run.run_dir / "review.png", dpi=80)
    print(f"refined index: {run.run_dir / 'refined_index.csv'}; "
          f"review list ({review} images): {run.run_dir / 'review.csv'}")
    return 0


def _persons(args) -> int:
    """Print ``path<TAB>persons`` per image; unreadable images go to stderr and make the exit code 1."""
    from .refinement.persons import detect_many, make_detector

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


def _table1(args) -> int:
    from .results.ablations import table1
    from .results.run import Run

    run = Run.open(args.profile, _run_dir(args), args.data_dir, device=args.device, progress=not args.quiet)
    table = table1(run)
    table.to_csv(run.run_dir / "table1.csv")
    print(table.round(2).T.to_string())
    return 0


def _run_folder_arguments(p: argparse.ArgumentParser) -> None:
    """The run folder, as every command that reads or writes one takes it (resolved by :func:`settings.run_dir`)."""
    p.add_argument("--runs-dir", help=RUNS_DIR_HELP)
    p.add_argument("--run-dir", type=Path, help="the run folder itself, instead of <runs-dir>/<profile>")


def _run_arguments(p: argparse.ArgumentParser, models: bool = False) -> None:
    p.add_argument("--profile", default="demo", help=PROFILE_HELP)
    if models:
        p.add_argument("--model", nargs="+", default=["extended"], help="model names (models.MODEL_NAMES)")
    p.add_argument("--data-dir", help=f"folder holding ccp/ or imaterialist/ (default {DATA_DIR_DEFAULT})")
    _run_folder_arguments(p)
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: CUDA when available)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _book_run(args) -> int:
    import json

    from .book.runner import ChapterFailed, run_book
    from .data.ccp import locate
    from .profiles import get_profile

    def value(text):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text

    t = time.perf_counter()
    profile = args.profile + DRY_RUN_SUFFIX if args.dry_run else args.profile
    if get_profile(profile).source == "ccp":  # fetched here (progress bar in the terminal) when it is missing
        locate(args.data_dir)
    try:
        results = run_book(profile, runs_dir=args.runs_dir, data_dir=args.data_dir, start=args.start,
                           force=args.force, parameters={k: value(v) for k, v in args.parameter}, jobs=args.jobs,
                           wait=args.wait)
    except ChapterFailed as e:
        print(f"clothparse book run: {e}", file=sys.stderr)
        return 1
    ran = [r.chapter for r in results if r.status == "executed"]
    print(f"book ({profile}): {len(ran)} chapter(s) executed, {len(results) - len(ran)} unchanged, "
          f"{time.perf_counter() - t:.0f} s")
    if args.html:
        return _book_build(argparse.Namespace(lenient=False, repository=args.repository, branch=args.branch), t)
    return 0


def _book_references(args) -> int:
    from .book.runner import ROOT, write_references

    for path in write_references(Path(args.dest) if args.dest else ROOT / "tests" / "notebooks"):
        print(path)
    return 0


def _book_build(args, t0: float | None = None) -> int:
    from .book.repository import repository_url
    from .book.runner import ROOT, build_html

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


def _repository_arguments(p) -> None:
    p.add_argument("--repository", metavar="URL", help="the book's GitHub address for its repository, issue and launch "
                   "buttons (default: $CLOTHPARSE_REPOSITORY_URL, else the checkout's origin remote when it is on GitHub; "
                   "none: no buttons)")
    p.add_argument("--branch", help="the branch the buttons link to (default: $CLOTHPARSE_REPOSITORY_BRANCH, else "
                   "origin's default branch)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="clothparse", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("prepare", help="cache a profile's data set at its training size, print its statistics, write its split")
    p.add_argument("--profile", default="demo", help=PROFILE_HELP)
    p.add_argument("--data-dir", help=f"folder holding ccp/ or imaterialist/ (default {DATA_DIR_DEFAULT})")
    p.add_argument("--cache-dir", help=f"where caches go (default ${settings.CACHE_DIR_VAR} or ~/.cache/clothparse/data)")
    _run_folder_arguments(p)
    p.add_argument("--size", help="HEIGHTxWIDTH, multiples of 32 (default: the profile's)")
    p.add_argument("--workers", type=int, help="reader processes (default: all cores)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_prepare)

    t = sub.add_parser("train", help="train models with the two-phase schedule (resumes a killed run)")
    _run_arguments(t, models=True)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--encoder", help="resnet34 or efficientnet-lite0 (default: the profile's)")
    t.add_argument("--weights", help="imagenet, none, or a local state-dict file (default: the profile's)")
    t.add_argument("--epochs-frozen", type=int)
    t.add_argument("--epochs-unfrozen", type=int)
    t.add_argument("--batch-size", type=int)
    t.add_argument("--lr-frozen", type=float)
    t.add_argument("--lr-unfrozen", type=float)
    t.add_argument("--no-resume", action="store_true", help="start afresh even if a checkpoint exists")
    t.add_argument("--wait", action="store_true", help=WAIT_HELP.format("model's folder"))
    t.add_argument("--precision", choices=["auto", "fp32", "fp16", "bf16"],
                   help="mixed precision (default auto: fp16 on CUDA; bf16 + channels-last on a CPU with native "
                   "bfloat16, except deeplabv3plus; else fp32)")
    t.add_argument("--compile", action="store_true", help="torch.compile the model (anew for each phase)")
    t.add_argument("--data-on-device", choices=["auto", "device", "host", "off"],
                   help="training batches gathered and augmented on the device, from the cache held there "
                   "(device) or read ahead into pinned memory (host); off: fastai's DataLoader "
                   "(default auto: device when it fits on CUDA, else host; off on a CPU)")
    t.add_argument("--no-cudnn-benchmark", action="store_true", help="no cudnn autotuning on CUDA")
    t.add_argument("--distributed", action="store_true",
                   help="data-parallel, one process per GPU (or CPU process, gloo) under `torchrun`")
    t.set_defaults(func=_train)

    e = sub.add_parser("evaluate", help="evaluate trained models on a split (IoUs, confusion, ClassBranch, GT injection)")
    _run_arguments(e, models=True)
    e.add_argument("--split", default="test", choices=["train", "valid", "test"])
    e.add_argument("--checkpoint", default="best", choices=["best", "last"])
    e.set_defaults(func=_evaluate)

    r = sub.add_parser("predict", help="parse photos: class-index mask, overlay and garment list per image")
    r.add_argument("images", nargs="+", metavar="IMAGE")
    r.add_argument("--checkpoint", help="torch backend: a best.pt / last.pt file, or a model of the run folder "
                   "(e.g. extended: models/extended/, else the book's models/extended-refined/)")
    r.add_argument("--backend", choices=["torch", "onnx"],
                   help="torch (--checkpoint) or onnx (--model: onnxruntime on the CPU, without the training stack); "
                   "default: torch with --checkpoint, and without --checkpoint or --model the model that ships with the "
                   "package (onnx)")
    r.add_argument("--model", metavar="FILE.onnx", help="onnx backend: a model `clothparse export` wrote (card beside it)")
    r.add_argument("--profile", default="demo", help=f"whose run folder holds the models: {profile_names()} (default demo)")
    _run_folder_arguments(r)
    r.add_argument("--out", required=True, help="output folder")
    r.add_argument("--present", action="append", default=[], help="garment known to be present (repeatable)")
    r.add_argument("--absent", action="append", default=[], help="garment known to be absent (repeatable)")
    r.add_argument("--device", help="torch backend: cpu, cuda ... (default: CUDA when available)")
    r.set_defaults(func=_predict)

    x = sub.add_parser("export", help="export a trained model to ONNX, with its JSON card, for `predict --backend onnx`")
    x.add_argument("--checkpoint", required=True, help="a best.pt / last.pt file, or a model of the run folder "
                   "(as predict takes it)")
    x.add_argument("--profile", default="demo", help=f"whose run folder holds the models: {profile_names()} (default demo)")
    _run_folder_arguments(x)
    x.add_argument("--out", metavar="FILE.onnx", help="the ONNX file (its card: FILE.json beside it)")
    x.add_argument("--ship", action="store_true", help="instead of --out: make it the model that ships with the "
                   "package (float16 weights, compared with the float32 export on photos, its card stating how well "
                   "they agree), in clothparse_lib/shipped/")
    x.add_argument("--photos", nargs="+", metavar="PHOTO", help="--ship: the photos to compare on (default: the CCP "
                   "test photos of the model's split)")
    x.add_argument("--data-dir", help=f"--ship: folder holding ccp/ (default {DATA_DIR_DEFAULT})")
    x.set_defaults(func=_export)

    f = sub.add_parser("refine", help="the paper's refinement: multi-person filtering and iterative crop (refined index)")
    _run_arguments(f)
    f.set_defaults(func=_refine)

    t1 = sub.add_parser("table1", help="Table 1: plain U-Net on base vs refined data, beside the paper's")
    _run_arguments(t1)
    t1.set_defaults(func=_table1)

    from .refinement.persons import BACKENDS, DEFAULT_BACKEND
    ps = sub.add_parser("persons", help="count the persons in images (one line per image: path<TAB>count)")
    ps.add_argument("images", nargs="+", metavar="IMAGE")
    ps.add_argument("--backend", default=DEFAULT_BACKEND, choices=sorted(BACKENDS),
                    help=f"person detector (default {DEFAULT_BACKEND}; maskrcnn is the paper's, needs weights)")
    ps.add_argument("--weights", help="maskrcnn: a local state-dict file (default: torchvision's download)")
    ps.add_argument("--threshold", type=float, help="minimum detection score (default: the backend's)")
    ps.add_argument("--cache", help="JSON-lines file of per-image results: a rerun skips the images already done")
    ps.set_defaults(func=_persons)

    b = sub.add_parser("book", help="run the book's chapters with papermill and render them with jupyter-book")
    bsub = b.add_subparsers(dest="book_command", required=True)
    br = bsub.add_parser("run", help="execute the chapters in order (unchanged ones are skipped)")
    br.add_argument("--profile", default="demo", help=PROFILE_HELP)
    br.add_argument("--dry-run", action="store_true",
                    help=f"the profile's code path on {DRY_RUN_IMAGES} images at {DRY_RUN_SIZE[0]}x{DRY_RUN_SIZE[1]}, 1 epoch, "
                    "2 seeds (profile NAME-dry)")
    br.add_argument("--jobs", type=int, help="trainings run at once before the chapters (default: one per core, "
                    "one thread each, on a CPU; on a GPU as many as its memory and the cores allow; 1: the chapters "
                    "train one at a time)")
    br.add_argument("--from", dest="start", metavar="CHAPTER", help="start at this chapter (resume after a failure)")
    br.add_argument("--force", action="store_true", help="execute even the unchanged chapters")
    br.add_argument("--wait", action="store_true", help=WAIT_HELP.format("run folder"))
    br.add_argument("--runs-dir", help=RUNS_DIR_HELP)
    br.add_argument("--data-dir", help=f"folder holding ccp/ or imaterialist/ (default {DATA_DIR_DEFAULT})")
    br.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                    help="another papermill parameter (VALUE read as JSON when it parses, else as text)")
    br.add_argument("--html", action="store_true", help="then render the book (jupyter-book build)")
    _repository_arguments(br)
    br.set_defaults(func=_book_run)
    bf = bsub.add_parser("references", help="re-make nbval's references: the chapters executed with the smoke profile")
    bf.add_argument("--dest", default=None, help="folder (default tests/notebooks)")
    bf.set_defaults(func=_book_references)
    bb = bsub.add_parser("build", help="render the executed chapters to _build/html (warnings are errors)")
    bb.add_argument("--lenient", action="store_true", help="do not treat Sphinx warnings as errors")
    _repository_arguments(bb)
    bb.set_defaults(func=_book_build)

    d = sub.add_parser("download", help="download a public data set (needs internet)")
    d.add_argument("dataset", choices=["ccp"])
    d.add_argument("--data-dir", help=f"destination folder (default {DATA_DIR_DEFAULT})")
    d.set_defaults(func=_download)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, RuntimeError, FileNotFoundError) as e:  # (a folder in use: locks.FolderLocked)
        print(f"clothparse {args.command}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a full disk: one line (storage.DiskFull says where and how much)
        if e.errno != errno.ENOSPC:
            raise
        from .storage import DiskFull, disk_full
        full = e if isinstance(e, DiskFull) else disk_full(e.filename or ".")
        print(f"clothparse {args.command}: error: {full}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

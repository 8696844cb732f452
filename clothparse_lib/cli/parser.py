"""The ``clothparse`` command line's arguments: one sub-command per handler of :mod:`.data`, :mod:`.train`,
:mod:`.predict`, :mod:`.refine` and :mod:`.book` (which import their heavy stacks only when they run)."""
from __future__ import annotations

import argparse
from pathlib import Path

from .. import settings
from ..profiles import DRY_RUN_IMAGES, DRY_RUN_SIZE, DRY_RUN_SUFFIX, PRECISIONS, PROFILES, profile_names
from . import book, data, predict, refine, train

__all__ = ["DATA_DIR_DEFAULT", "RUNS_DIR_HELP", "PROFILE_HELP", "WAIT_HELP", "build_parser"]


DATA_DIR_DEFAULT = f"${settings.DATA_DIR_VAR}, else {settings.DEFAULT_DATA_DIR}"
RUNS_DIR_HELP = f"folder of the run folders <runs-dir>/<profile> (default ${settings.RUNS_DIR_VAR}, else ./runs)"
PROFILE_HELP = "; ".join(f"{p.name}: {p.source} at {p.size[0]}x{p.size[1]}" for p in PROFILES.values()) + \
    f" (and NAME{DRY_RUN_SUFFIX}, a profile's dry run; default demo)"
WAIT_HELP = "wait for another process using the {} to end (default: stop, naming it)"


def _run_folder_arguments(p: argparse.ArgumentParser) -> None:
    """The run folder, as every command that reads or writes one takes it (resolved by :func:`settings.run_dir`)."""
    p.add_argument("--runs-dir", help=RUNS_DIR_HELP)
    p.add_argument("--run-dir", type=Path, help="the run folder itself, instead of <runs-dir>/<profile>")


def _data_dir_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", help=f"folder holding ccp/ or imaterialist/ (default {DATA_DIR_DEFAULT})")


def _run_arguments(p: argparse.ArgumentParser, models: bool = False) -> None:
    p.add_argument("--profile", default="demo", help=PROFILE_HELP)
    if models:
        p.add_argument("--model", nargs="+", default=["extended"], help="model names (models.MODEL_NAMES)")
    _data_dir_argument(p)
    _run_folder_arguments(p)
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: CUDA when available)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _checkpoint_arguments(p: argparse.ArgumentParser, help: str, required: bool = False) -> None:
    """A trained model, as a file or by name in a profile's run folder."""
    p.add_argument("--checkpoint", required=required, help=help)
    p.add_argument("--profile", default="demo", help=f"whose run folder holds the models: {profile_names()} (default demo)")
    _run_folder_arguments(p)


def _repository_arguments(p) -> None:
    p.add_argument("--repository", metavar="URL", help="the book's GitHub address for its repository, issue and launch "
                   "buttons (default: $CLOTHPARSE_REPOSITORY_URL, else the checkout's origin remote when it is on GitHub; "
                   "none: no buttons)")
    p.add_argument("--branch", help="the branch the buttons link to (default: $CLOTHPARSE_REPOSITORY_BRANCH, else "
                   "origin's default branch)")


def _data_commands(sub) -> None:
    p = sub.add_parser("prepare", help="cache a profile's data set at its training size, print its statistics, write its split")
    p.add_argument("--profile", default="demo", help=PROFILE_HELP)
    _data_dir_argument(p)
    p.add_argument("--cache-dir", help=f"where caches go (default ${settings.CACHE_DIR_VAR} or ~/.cache/clothparse/data)")
    _run_folder_arguments(p)
    p.add_argument("--size", help="HEIGHTxWIDTH, multiples of 32 (default: the profile's)")
    p.add_argument("--workers", type=int, help="reader processes (default: all cores)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=data.prepare)

    d = sub.add_parser("download", help="download a public data set (needs internet)")
    d.add_argument("dataset", choices=["ccp"])
    d.add_argument("--data-dir", help=f"destination folder (default {DATA_DIR_DEFAULT})")
    d.set_defaults(func=data.download)


def _training_commands(sub) -> None:
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
    t.add_argument("--precision", choices=PRECISIONS,
                   help="mixed precision (default auto: fp16 on CUDA; bf16 + channels-last on a CPU with native "
                   "bfloat16, except deeplabv3plus; else fp32; fp16 is refused on a CPU)")
    t.add_argument("--compile", action="store_true", help="torch.compile the model (anew for each phase)")
    t.add_argument("--data-on-device", choices=["auto", "device", "host", "off"],
                   help="training batches gathered and augmented on the device, from the cache held there "
                   "(device) or read ahead into pinned memory (host); off: fastai's DataLoader "
                   "(default auto: device when it fits on CUDA, else host; off on a CPU)")
    t.add_argument("--no-cudnn-benchmark", action="store_true", help="no cudnn autotuning on CUDA")
    t.add_argument("--distributed", action="store_true",
                   help="data-parallel, one process per GPU (or CPU process, gloo) under `torchrun`")
    t.set_defaults(func=train.train)

    e = sub.add_parser("evaluate", help="evaluate trained models on a split (IoUs, confusion, ClassBranch, GT injection)")
    _run_arguments(e, models=True)
    e.add_argument("--split", default="test", choices=["train", "valid", "test"])
    e.add_argument("--checkpoint", default="best", choices=["best", "last"])
    e.set_defaults(func=train.evaluate)


def _inference_commands(sub) -> None:
    r = sub.add_parser("predict", help="parse photos: class-index mask, overlay and garment list per image")
    r.add_argument("images", nargs="+", metavar="IMAGE")
    _checkpoint_arguments(r, "torch backend: a best.pt / last.pt file, or a model of the run folder (e.g. extended: "
                          "models/extended/, else the book's models/extended-refined/)")
    r.add_argument("--backend", choices=["torch", "onnx"],
                   help="torch (--checkpoint) or onnx (--model: onnxruntime on the CPU, without the training stack); "
                   "default: torch with --checkpoint, and without --checkpoint or --model the model that ships with the "
                   "package (onnx)")
    r.add_argument("--model", metavar="FILE.onnx", help="onnx backend: a model `clothparse export` wrote (card beside it)")
    r.add_argument("--out", required=True, help="output folder")
    r.add_argument("--present", action="append", default=[], help="garment known to be present (repeatable)")
    r.add_argument("--absent", action="append", default=[], help="garment known to be absent (repeatable)")
    r.add_argument("--device", help="torch backend: cpu, cuda ... (default: CUDA when available)")
    r.set_defaults(func=predict.predict)

    x = sub.add_parser("export", help="export a trained model to ONNX, with its JSON card, for `predict --backend onnx`")
    _checkpoint_arguments(x, "a best.pt / last.pt file, or a model of the run folder (as predict takes it)",
                          required=True)
    x.add_argument("--out", metavar="FILE.onnx", help="the ONNX file (its card: FILE.json beside it)")
    x.add_argument("--ship", action="store_true", help="instead of --out: make it the model that ships with the "
                   "package (float16 weights, compared with the float32 export on photos, its card stating how well "
                   "they agree), in clothparse_lib/shipped/")
    x.add_argument("--photos", nargs="+", metavar="PHOTO", help="--ship: the photos to compare on (default: the CCP "
                   "test photos of the model's split)")
    x.add_argument("--data-dir", help=f"--ship: folder holding ccp/ (default {DATA_DIR_DEFAULT})")
    x.set_defaults(func=predict.export)


def _refinement_commands(sub) -> None:
    f = sub.add_parser("refine", help="the paper's refinement: multi-person filtering and iterative crop (refined index)")
    _run_arguments(f)
    f.set_defaults(func=refine.refine)

    from ..refinement.persons import BACKENDS, DEFAULT_BACKEND
    ps = sub.add_parser("persons", help="count the persons in images (one line per image: path<TAB>count)")
    ps.add_argument("images", nargs="+", metavar="IMAGE")
    ps.add_argument("--backend", default=DEFAULT_BACKEND, choices=sorted(BACKENDS),
                    help=f"person detector (default {DEFAULT_BACKEND}; maskrcnn is the paper's, needs weights)")
    ps.add_argument("--weights", help="maskrcnn: a local state-dict file (default: torchvision's download)")
    ps.add_argument("--threshold", type=float, help="minimum detection score (default: the backend's)")
    ps.add_argument("--cache", help="JSON-lines file of per-image results: a rerun skips the images already done")
    ps.set_defaults(func=refine.persons)


def _book_commands(sub) -> None:
    t1 = sub.add_parser("table1", help="Table 1: plain U-Net on base vs refined data, beside the paper's")
    _run_arguments(t1)
    t1.set_defaults(func=book.table1)

    b = sub.add_parser("book", help="run the book's chapters with papermill and render them with jupyter-book")
    bsub = b.add_subparsers(dest="book_command", required=True)
    br = bsub.add_parser("run", help="execute the chapters in order into <run>/book (unchanged ones are skipped); "
                         "the checkout is left as it is")
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
    _run_folder_arguments(br)
    _data_dir_argument(br)
    br.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                    help="another papermill parameter (VALUE read as JSON when it parses, else as text)")
    br.add_argument("--html", action="store_true", help="then render the run's chapters (book build --profile)")
    _repository_arguments(br)
    br.set_defaults(func=book.run)
    bf = bsub.add_parser("references", help="re-make nbval's references: the chapters executed with the published "
                         "profile's dry run (CCP)")
    bf.add_argument("--dest", default=None, help="folder (default tests/notebooks)")
    _data_dir_argument(bf)
    bf.set_defaults(func=book.references)
    bp = bsub.add_parser("publish", help="copy a finished run's executed chapters into the book (book/*.ipynb)")
    bp.add_argument("--profile", default="demo", help=PROFILE_HELP)
    _run_folder_arguments(bp)
    bp.set_defaults(func=book.publish)
    bb = bsub.add_parser("build", help="render the book's chapters (default: the committed ones, to _build/html) "
                         "or a run's (--profile) to <run>/site/_build/html; warnings are errors")
    bb.add_argument("--profile", help="render the chapters this profile's run executed (book run), not the book's")
    _run_folder_arguments(bb)
    bb.add_argument("--lenient", action="store_true", help="do not treat Sphinx warnings as errors")
    _repository_arguments(bb)
    bb.set_defaults(func=book.build)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="clothparse", description="The clothparse command line.")
    sub = parser.add_subparsers(dest="command", required=True)
    _data_commands(sub)
    _training_commands(sub)
    _inference_commands(sub)
    _refinement_commands(sub)
    _book_commands(sub)
    return parser

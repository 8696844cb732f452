"""``clothparse train`` and ``clothparse evaluate``: trained models of a run folder. Everything that can be refused
is refused before the training stack is imported (:mod:`.checks`)."""
from __future__ import annotations

from .checks import check_train, run_dir

__all__ = ["train", "evaluate"]


def train(args) -> int:
    train_settings = check_train(args)
    if args.device is None and train_settings.precision != "auto":  # the default device: torch knows it
        import torch

        from ..profiles import check_precision
        check_precision(train_settings.precision, "cuda" if torch.cuda.is_available() else "cpu")
    from ..data.prepared import prepare_dataset
    from ..training.loop import train_model

    ctx = None
    if args.distributed:  # rank 0 prepares the data first, the others then find it cached
        from ..training.distributed import start
        ctx = start(args.device)
    try:
        if ctx is not None and not ctx.main:
            ctx.barrier()
        prepared = prepare_dataset(args.profile, data_dir=args.data_dir, run_dir=run_dir(args),
                                   progress=not args.quiet and (ctx is None or ctx.main))
        if ctx is not None and ctx.main:
            ctx.barrier()
        for name in args.model:
            folder = train_model(prepared, name, train_settings, run_dir(args), seed=args.seed,
                                 device=ctx.device if ctx is not None else args.device, resume=not args.no_resume,
                                 progress=not args.quiet, distributed=args.distributed, wait=args.wait)
            if ctx is None or ctx.main:
                print(f"{name}: checkpoints and history in {folder}")
    finally:
        if ctx is not None:
            ctx.close()
    return 0


def evaluate(args) -> int:
    from ..data.prepared import prepare_dataset
    from ..evaluation.scores import evaluate, load_checked, save_evaluation

    prepared = prepare_dataset(args.profile, data_dir=args.data_dir, run_dir=run_dir(args), progress=not args.quiet)
    for name in args.model:
        folder = run_dir(args) / "models" / name
        model = load_checked(folder / f"{args.checkpoint}.pt", args.device, model=name, profile=prepared.profile.name)
        result = evaluate(model, prepared.cache, prepared.split, args.split, progress=not args.quiet)
        path = save_evaluation(result, folder, args.split, {"split": args.split, "checkpoint": args.checkpoint})
        scores = result.scores()["none"]
        print(f"{name} on {args.split} ({len(result.per_image)} images): IoU excl. bg {100 * scores['iou_excl_bg']:.2f}, "
              f"overall {100 * scores['iou_overall']:.2f}, mask {100 * scores['iou_mask']:.2f} -> {path}")
    return 0

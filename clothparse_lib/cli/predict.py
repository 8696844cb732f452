"""``clothparse predict`` and ``clothparse export``: parsing photos with a trained or an exported model, and exporting
one. Arguments are checked, and an export's target found writable, before torch is imported."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from .checks import check_device, run_dir
from .ship import default_model, ship

__all__ = ["PREDICT_OUTPUTS", "predict", "export"]

PREDICT_OUTPUTS = ("{}.png", "{}_overlay.jpg", "{}.json")


def _check_backend(args) -> None:
    if args.backend == "onnx":
        if args.model is None or args.checkpoint is not None or args.device not in (None, "cpu"):
            raise ValueError("--backend onnx runs an exported model: --model FILE.onnx (`clothparse export` writes it), "
                             "on the CPU, without --checkpoint")
    elif args.checkpoint is None or args.model is not None:
        raise ValueError("the torch backend runs --checkpoint (a file or a model of the run folder); "
                         "--model FILE.onnx is for --backend onnx")
    elif Path(args.checkpoint).suffix == ".onnx":
        raise ValueError(f"--checkpoint {args.checkpoint} is an exported model: run it with --backend onnx --model "
                         f"{args.checkpoint}")
    check_device(args.device)


def predict(args) -> int:
    from PIL import Image

    from ..data.base import DataError, read_rgb
    from ..taxonomy import parse_classes

    present, absent = parse_classes(",".join(args.present)), parse_classes(",".join(args.absent))
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a folder")
    default_model(args)
    _check_backend(args)
    stems = _output_stems([Path(p) for p in args.images], out)
    if args.backend == "onnx":
        from ..inference.parsing import Parser
        parser = Parser.from_onnx(args.model)
    else:
        from ..evaluation.parsing import Parser
        parser = Parser.from_checkpoint(args.checkpoint, args.device, run_dir=run_dir(args))
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


def export(args) -> int:
    if args.ship:
        return ship(args)
    if args.out is None or args.photos or args.data_dir:
        raise ValueError("export writes --out FILE.onnx, or with --ship the package's model (--photos, --data-dir: "
                         "with --ship)")
    from ..evaluation.parsing import resolve_checkpoint
    from ..inference.card import card_path, check_target

    out = check_target(args.out)
    checkpoint = resolve_checkpoint(args.checkpoint, run_dir(args))
    from ..evaluation.scores import checkpoint_scores
    from ..models.export import export_onnx

    card = export_onnx(checkpoint, out, test=checkpoint_scores(checkpoint))
    inputs = "image" + (" and prior (B, 8; NaN unknown)" if card["prior"] else " (no prior input)")
    test = card["test"]
    iou = f"; test IoU excl. bg {100 * test['iou_excl_bg']:.2f}" if test and "iou_excl_bg" in test else ""
    size = out.stat().st_size / 2**20
    print(f"{card['model']} ({checkpoint}) -> {out} ({size:.1f} MiB, {card['size'][0]}x{card['size'][1]}, inputs "
          f"{inputs}{iou}); card {card_path(out)}")
    return 0

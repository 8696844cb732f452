"""Pilot of training recipes for a profile: validation IoU excl. bg at the profile's size against core-minutes.

Each recipe (overrides of the profile's ``TrainSettings``: progressive resizing's early size and epochs per phase)
trains our model and the plain U-Net (one seed, refined data) two at a time, one thread each, as ``book run`` does;
then ``best.pt`` of each is scored on the validation split at the profile's size (the test split is never read: a
recipe is chosen by validation). Prints the table and writes it as CSV (``--out``): recipe, model, validation IoU
excl. bg (%) at the profile's size, the training's measured seconds (its epochs' wall time, one core each, whatever
else ran beside it), the median seconds of an epoch at each size and the seconds the recipe costs at those medians
(``epochs x median`` per size: the cost of the recipe without the load of its worst moments). A second call reuses the
trained models (it only scores them again).

    CLOTHPARSE_DATA_DIR=/work/shared/data OMP_NUM_THREADS=1 .venv/bin/python benchmarks/pilot_recipes.py \\
        --profile cpu288 --runs-dir ~/.cache/clothparse/pilot --out clothparse_lib/pilots/cpu288.csv
"""
from __future__ import annotations

import argparse
import multiprocessing
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import pandas as pd

from clothparse_lib import runfolder
from clothparse_lib.profiles import get_profile
from clothparse_lib.results.run import Run

# name -> TrainSettings overrides (epochs: frozen + unfrozen at the early size, then the final phase at the profile's)
RECIPES = {
    "3 + 7 at 128x96, 2 at 288x192": dict(early_size=(128, 96), epochs_frozen=3, epochs_unfrozen=7, epochs_final=2),
    "3 + 8 at 128x96, 1 at 288x192": dict(early_size=(128, 96), epochs_frozen=3, epochs_unfrozen=8, epochs_final=1),
    "3 + 9 at 128x96": dict(early_size=(128, 96), epochs_frozen=3, epochs_unfrozen=9, epochs_final=0),
}
# made once, copied into each recipe's run folder
SHARED = (runfolder.persons_file, runfolder.refined_index_file, runfolder.split_file,
          lambda run_dir: runfolder.split_file(run_dir, "split-refined"))


def _init() -> None:
    import torch

    torch.set_num_threads(1)


def _train(profile: str, run_dir: str, data_dir: str | None, model: str, seed: int, overrides: dict) -> dict:
    """Train one model of one recipe (resuming if it was killed) and score best.pt on the validation split."""
    from clothparse_lib.evaluation.scores import evaluate
    from clothparse_lib.models.checkpoints import is_finished, load_model
    from clothparse_lib.training.loop import train_model

    run = Run(get_profile(profile), Path(run_dir), data_dir, "cpu", progress=False)
    data = run.refined()
    folder = run.model_dir(model, "refined", seed)
    if not is_finished(folder):
        train_model(data, model, replace(run.profile.train, **overrides), run.run_dir, seed=seed, device="cpu",
                    progress=False, tag=runfolder.tag(model, "refined", seed))
    history = pd.read_csv(runfolder.history_file(folder))
    scores = evaluate(load_model(runfolder.best_checkpoint(folder), "cpu"), data.cache, data.split, "valid", device="cpu",
                      progress=False).scores()["none"]
    per_size = history.groupby("size")["seconds"].agg(["count", "median"])
    return {"model": model, "valid IoU excl. bg (%)": round(100 * scores["iou_excl_bg"], 2),
            "epochs": " + ".join(f"{n} at {size}" for size, n in per_size["count"].items()),
            "median epoch seconds": ", ".join(f"{m:.0f} at {size}" for size, m in per_size["median"].items()),
            "seconds at the medians": round((per_size["count"] * per_size["median"]).sum()),
            "measured seconds": round(history["seconds"].sum())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="cpu288")
    ap.add_argument("--runs-dir", type=Path, required=True, help="where each recipe's run folder goes")
    ap.add_argument("--data-dir")
    ap.add_argument("--recipes", nargs="+", choices=list(RECIPES), default=list(RECIPES))
    ap.add_argument("--models", nargs="+", default=["extended", "plain_unet"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, help="the table as CSV")
    args = ap.parse_args()

    profile, runs = get_profile(args.profile), args.runs_dir.expanduser().resolve()
    shared = Run(profile, runs / "shared" / profile.name, args.data_dir)
    refined = shared.refined()  # the refinement (person detection), the caches and splits, once
    for overrides in RECIPES.values():
        refined.at(overrides.get("early_size") or profile.size, progress=True)
    rows = []
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"), initializer=_init) as pool:
        for name in args.recipes:
            # <runs>/<recipe>/<profile>: the chosen recipe's folder can become the book's run folder
            # (CLOTHPARSE_RUNS_DIR=<runs>/<recipe>), its two trainings then resumed as done
            run_dir = runs / name.replace(" ", "").replace(",", "_") / profile.name
            run_dir.mkdir(parents=True, exist_ok=True)
            for path in SHARED:
                if not path(run_dir).exists():
                    shutil.copy2(path(shared.run_dir), path(run_dir))
            jobs = [pool.submit(_train, profile.name, str(run_dir), args.data_dir, m, args.seed, RECIPES[name])
                    for m in args.models]
            rows += [{"recipe": name, **j.result()} for j in jobs]
            print(pd.DataFrame(rows).to_string(index=False), flush=True)
    table = pd.DataFrame(rows)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.out, index=False)
        print(f"written: {args.out}")


if __name__ == "__main__":
    main()

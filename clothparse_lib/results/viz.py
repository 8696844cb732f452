"""Plots of the book: training curves, confusion heatmaps, galleries, comparisons with the paper."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from ..taxonomy import CLASSES, colorize
from .verdicts import MAX_SEEDS, VERDICT_COLOURS

__all__ = ["training_curves", "lr_finder_plot", "confusion_heatmaps", "gallery", "legend_strip", "comparison_bars",
           "injection_diagram", "image_row", "seed_plot", "verdict_plot", "ShownTable", "verdict_table"]


def training_curves(history: pd.DataFrame, title: str = "") -> plt.Figure:
    """Every loss term (train and valid) and the validation IoU excl. bg, per epoch; a dashed line where a phase
    starts, labelled with its size where the size changes (progressive resizing: the validation of each phase is at
    its own size)."""
    h = history.reset_index(drop=True)
    x = np.arange(1, len(h) + 1)
    terms = [c.removeprefix("valid_loss_") for c in h.columns if c.startswith("valid_loss_") and h[c].notna().any()]
    fig, axes = plt.subplots(1, len(terms) + 2, figsize=(3.2 * (len(terms) + 2), 3), constrained_layout=True)
    for ax, term in zip(axes, ["total", *terms]):
        train, valid = ("train_loss", "valid_loss") if term == "total" else (f"train_loss_{term}", f"valid_loss_{term}")
        ax.plot(x, h[train], "o-", label="train")
        ax.plot(x, h[valid], "o-", label="valid")
        ax.set_title(f"loss: {term}")
    axes[-1].plot(x, 100 * h["valid_iou_excl_bg"], "o-", color="C2")
    axes[-1].set_title("valid IoU excl. bg (%)")
    starts = [i for i in range(1, len(h)) if h["phase"].iloc[i] != h["phase"].iloc[i - 1]]
    sizes = h["size"].astype(str) if "size" in h else pd.Series([""] * len(h))
    for ax in axes:
        ax.set_xlabel("epoch")
        for i in starts:
            ax.axvline(i + 0.5, color="grey", lw=0.8, ls="--")
            if sizes.iloc[i] != sizes.iloc[i - 1]:
                ax.text(i + 0.6, 0.97, f"→ {sizes.iloc[i]}", transform=ax.get_xaxis_transform(), va="top", fontsize=7,
                        color="grey")
    axes[0].legend()
    if title:
        fig.suptitle(title)
    return fig


def lr_finder_plot(result: dict, chosen: float | None = None, skip_start: int = 5, skip_end: int = 5) -> plt.Figure:
    """The finder's loss against the learning rate, as fastai's own plot draws it: without the first ``skip_start``
    and the last ``skip_end`` points (where the loss diverges), the y axis up to a little above the first loss shown,
    so that the valley can be seen."""
    fig, ax = plt.subplots(figsize=(5, 3.2), constrained_layout=True)
    lrs, losses = np.asarray(result["lrs"]), np.asarray(result["losses"])
    if len(lrs) > skip_start + skip_end + 2:
        lrs, losses = lrs[skip_start:-skip_end], losses[skip_start:-skip_end]
    ax.plot(lrs, losses)
    finite = losses[np.isfinite(losses)]
    if len(finite):  # the diverging tail above the frame
        low, high = finite.min(), max(finite[0], finite.min())
        ax.set_ylim(low - 0.1 * abs(high - low) - 1e-6, high + 0.3 * abs(high - low) + 1e-6)
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("loss (smoothed)")
    for (name, value), color in zip(result["suggestions"].items(), ("C1", "C2", "C3")):
        ax.axvline(value, color=color, ls=":", label=f"{name} {value:.1e}")
    if chosen:
        ax.axvline(chosen, color="k", label=f"chosen {chosen:.0e}")
    ax.legend(fontsize=8)
    return fig


def confusion_heatmaps(ours: np.ndarray, paper: np.ndarray | None, title: str, min_shown: float = 1.0) -> plt.Figure:
    """This run's normalised confusion matrix (%) above the paper's, one per row at the page's width; the numbers
    of off-diagonal cells below ``min_shown`` % are left out so that the others stay legible."""
    panels = [("this run", ours)] + ([("paper", paper)] if paper is not None else [])
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 6.6 * len(panels)), constrained_layout=True, squeeze=False)
    for ax, (name, m) in zip(axes[:, 0], panels):
        m = np.asarray(m, float)
        shown = ((m >= min_shown) | np.eye(len(m), dtype=bool)) & ~np.isnan(m)
        sns.heatmap(m, annot=np.where(shown, np.char.mod("%.1f", m), ""), fmt="", cmap="Blues", vmin=0, vmax=100,
                    cbar=False, ax=ax, xticklabels=CLASSES, yticklabels=CLASSES, annot_kws={"size": 11})
        ax.set_xlabel("prediction")
        ax.set_ylabel("ground truth")
        ax.set_title(f"{title}: {name} (numbers below {min_shown:g} % left out)")
    return fig


def gallery(rows: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]], columns=("image", "ground truth", "prediction"),
            scale: float = 1.6) -> plt.Figure:
    """One row per (label, image, ground truth, prediction[, more predictions...]); no rows: a line that says so."""
    if not rows:
        fig, ax = plt.subplots(figsize=(6, 0.5))
        ax.text(0.5, 0.5, "no image to show", ha="center", va="center")
        ax.axis("off")
        return fig
    n_cols = len(rows[0]) - 1
    h, w = rows[0][1].shape[:2]
    fig, axes = plt.subplots(len(rows), n_cols, figsize=(n_cols * scale * w / h + 0.4, len(rows) * scale + 0.3),
                             squeeze=False, constrained_layout=True)
    for r, (label, image, *masks) in enumerate(rows):
        panels = [image] + [colorize(np.asarray(m)) for m in masks]
        for c, panel in enumerate(panels):
            ax = axes[r, c]
            ax.imshow(panel)
            ax.set_xticks([]), ax.set_yticks([])
            if r == 0:
                ax.set_title(columns[c], fontsize=9)
        axes[r, 0].set_ylabel(label, fontsize=8)
    return fig


def legend_strip() -> plt.Figure:
    fig, ax = plt.subplots(figsize=(7, 0.5))
    for i, name in enumerate(CLASSES):
        ax.add_patch(plt.Rectangle((i, 0), 0.9, 1, color=np.array(colorize(np.array([i]))[0]) / 255))
        ax.text(i + 0.45, 0.5, name, ha="center", va="center", fontsize=7, color="white" if i in (0, 3, 5) else "black")
    ax.set_xlim(0, len(CLASSES))
    ax.axis("off")
    return fig


def comparison_bars(table: pd.DataFrame, columns: list[str], title: str) -> plt.Figure:
    """Grouped bars: this run vs the paper for each row and metric (``table`` has 'run'/'paper' column levels)."""
    fig, axes = plt.subplots(1, len(columns), figsize=(4 * len(columns), 3.2), constrained_layout=True, squeeze=False)
    for ax, col in zip(axes[0], columns):
        data = pd.DataFrame({"this run": table[(col, "run")], "paper": table[(col, "paper")]})
        data.plot.barh(ax=ax, legend=ax is axes[0, 0])
        ax.set_title(col)
        ax.set_xlim(0, 100)
    fig.suptitle(title)
    return fig


def injection_diagram(decoder: int = 99, n_garments: int = 8, n_boxes: int = 32, n_classes: int = 9) -> plt.Figure:
    """Schematic of the Extended U-Net's head (Figure 1): the branches' logits, tiled into constant maps,
    join the decoder's last maps before the final residual block."""
    fig, ax = plt.subplots(figsize=(9, 3.4))
    boxes = {
        "encoder": (0.0, 1.2, "encoder\n(frozen in phase 1)", "C0"),
        "decoder": (2.1, 1.2, f"U-Net decoder\n{decoder} maps", "C0"),
        "class": (2.1, 2.6, f"ClassBranch\n{n_garments} logits", "C1"),
        "box": (2.1, -0.2, f"BBbranch\n{n_boxes} logits ({n_garments} boxes)", "C2"),
        "tile": (4.3, 1.2, f"concat: {decoder} + {n_garments} + {n_boxes}\nconstant maps", "C4"),
        "block": (6.4, 1.2, f"final residual block\n-> {decoder}, 1x1 conv -> {n_classes}", "C0"),
    }
    for x, y, text, color in boxes.values():
        ax.add_patch(plt.Rectangle((x, y), 1.8, 0.9, facecolor=color, alpha=0.25, edgecolor=color))
        ax.text(x + 0.9, y + 0.45, text, ha="center", va="center", fontsize=8)
    arrows = [("encoder", "decoder"), ("encoder", "class"), ("encoder", "box"), ("decoder", "tile"), ("class", "tile"),
              ("box", "tile"), ("tile", "block")]
    for a, b in arrows:
        (xa, ya, *_), (xb, yb, *_) = boxes[a], boxes[b]
        ax.annotate("", xy=(xb, yb + 0.45), xytext=(xa + 1.8, ya + 0.45), arrowprops=dict(arrowstyle="->", color="0.3"))
    ax.text(4.3 + 0.9, 2.75, "prior injection: known garments\noverride ClassBranch logits (±8)", ha="center", fontsize=7,
            color="C1")
    ax.set_xlim(-0.1, 8.3)
    ax.set_ylim(-0.4, 3.7)
    ax.axis("off")
    return fig


def image_row(paths, titles=None, height: float = 3.0) -> plt.Figure:
    """Image files side by side (e.g. ``clothparse predict``'s overlays)."""
    images = [plt.imread(p) for p in paths]
    fig, axes = plt.subplots(1, len(images), figsize=(sum(height * i.shape[1] / i.shape[0] for i in images) + 0.3, height),
                             squeeze=False, constrained_layout=True)
    for ax, image, title in zip(axes[0], images, titles or [None] * len(images)):
        ax.imshow(image)
        ax.set_xticks([]), ax.set_yticks([])
        if title:
            ax.set_title(title, fontsize=8)
    return fig


def seed_plot(spread: pd.DataFrame, metric: str = "iou_excl_bg") -> plt.Figure:
    """Each model's ``metric`` per seed (dots) and its mean (bar), from :func:`results.beyond.seed_spread`."""
    runs = spread[spread.index.get_level_values("seed").str.startswith("seed")].reset_index()
    fig, ax = plt.subplots(figsize=(5, 0.6 + 0.5 * runs["model"].nunique()), constrained_layout=True)
    sns.barplot(data=runs, y="model", x=metric, errorbar=None, alpha=0.3, ax=ax)
    sns.stripplot(data=runs, y="model", x=metric, hue="seed", size=7, jitter=False, ax=ax)
    ax.set_xlabel(f"{metric} (%)")
    ax.legend(fontsize=7, bbox_to_anchor=(1.01, 1), loc="upper left")
    return fig


def verdict_plot(claims: pd.DataFrame) -> plt.Figure:
    """The claims of :func:`results.verdicts.claims` as a figure, coloured by verdict. Comparisons (left): each
    seed's difference A − B (dots), the mean ± std (bar), the one-sided 95 % bounds of the mean (thin line), the
    paper's difference (black diamond) and zero. Levels (right): each seed's value, mean ± std, the paper's number."""
    panels = [("paired difference", "difference A − B (points)"), ("level", "value (%)")]
    rows = {kind: claims[claims["test"] == kind] for kind, _ in panels}
    fig, axes = plt.subplots(1, 2, figsize=(13, 1.0 + 0.45 * max(len(r) for r in rows.values())),
                             gridspec_kw={"width_ratios": [3, 2]}, constrained_layout=True)
    for ax, (kind, xlabel) in zip(axes, panels):
        table = rows[kind]
        for y, ((_, claim), row) in enumerate(table.iterrows()):
            colour = VERDICT_COLOURS[row["verdict"]]
            if kind == "paired difference" and np.isfinite(row["low (95 %)"]):
                ax.plot([row["low (95 %)"], row["high (95 %)"]], [y, y], color=colour, lw=1, alpha=0.6)
            std = row["std"] if np.isfinite(row["std"]) else 0.0
            ax.barh(y, 2 * std, left=row["this run"] - std, height=0.45, color=colour, alpha=0.35)
            ax.plot([row["this run"]] * 2, [y - 0.22, y + 0.22], color=colour, lw=2)
            ax.scatter(row["per seed"], [y] * len(row["per seed"]), s=18, color=colour, zorder=3)
            if np.isfinite(row["paper"]):
                ax.scatter(row["paper"], y, marker="D", s=30, color="black", zorder=4)
        ax.set_yticks(range(len(table)), [claim for _, claim in table.index], fontsize=8)
        for tick, verdict in zip(ax.get_yticklabels(), table["verdict"]):
            tick.set_color(VERDICT_COLOURS[verdict])
        ax.set_ylim(max(len(r) for r in rows.values()) - 0.5, -0.5)
        ax.margins(x=0.08)
        ax.set_xlabel(xlabel)
        if kind == "paired difference":
            ax.axvline(0, color="0.3", lw=0.8)
    handles = [plt.Line2D([], [], marker="o", ls="", color=c, label=v) for v, c in VERDICT_COLOURS.items()]
    handles.append(plt.Line2D([], [], marker="D", ls="", color="black", label="paper"))
    axes[1].legend(handles=handles, fontsize=8, loc="lower right")
    return fig


class ShownTable:
    """A table as a page shows it (``html``) and as a terminal or a plain-text reader of the notebook does."""

    def __init__(self, html: str, text: str):
        self.html, self.text = html, text

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return self.text


def verdict_table(claims: pd.DataFrame) -> ShownTable:
    """The claims table: in the page each verdict cell in its colour (green, red, grey) and numbers rounded for
    display only; as text the numeric table; the per-seed values left to :func:`verdict_plot`."""
    def colour(verdict):
        return f"background-color: {VERDICT_COLOURS[verdict]}; color: white"

    table = claims.drop(columns="per seed")
    styled = (table.style.map(colour, subset=["verdict"]).set_table_attributes('class="dataframe"')
              .set_table_styles([{"selector": "th, td", "props": "font-size: 0.8em; padding: 2px 5px"}])
              .format(precision=2, na_rep="").format("{:.0f}", subset=["seeds"], na_rep="")
              .format(lambda n: "" if np.isnan(n) else f"more than {MAX_SEEDS}" if np.isinf(n) else f"{n:.0f}",
                      subset=["seeds to decide"]))
    return ShownTable(styled.to_html(), table.to_string())

"""Every metric against a naive reference implementation on random data."""
import numpy as np
import torch

from clothparse_lib.metrics import (
    classification_scores,
    confusion_matrix,
    iou_per_class,
    normalize_confusion,
    segmentation_scores,
)

C = 9


def naive_confusion(pred, target):
    conf = np.zeros((C, C), np.int64)
    for p, t in zip(pred.ravel(), target.ravel()):
        conf[t, p] += 1
    return conf


def naive_iou(preds, targets, cls):
    """Dataset-accumulated IoU of one class: sum of intersections / sum of unions over all images."""
    inter = sum(((p == cls) & (t == cls)).sum() for p, t in zip(preds, targets))
    union = sum(((p == cls) | (t == cls)).sum() for p, t in zip(preds, targets))
    return inter / union if union else np.nan


def random_batch(seed, n=5, h=7, w=6):
    rng = np.random.default_rng(seed)
    target = rng.integers(0, C, (n, h, w))
    pred = np.where(rng.random((n, h, w)) < 0.6, target, rng.integers(0, C, (n, h, w)))
    return pred, target


def test_confusion_and_iou_against_naive():
    for seed in range(5):
        pred, target = random_batch(seed)
        conf = confusion_matrix(torch.from_numpy(pred), torch.from_numpy(target)).numpy()
        assert (conf == naive_confusion(pred, target)).all()
        scores = segmentation_scores(conf)
        ious = [naive_iou(pred, target, c) for c in range(C)]
        assert np.allclose(iou_per_class(conf), ious)
        assert np.isclose(scores["iou_excl_bg"], np.nanmean(ious[1:]))
        assert np.isclose(scores["iou_overall"], np.nanmean(ious))
        assert np.isclose(scores["iou_mask"], naive_iou((pred > 0).astype(int), (target > 0).astype(int), 1))
        inter = sum(((pred == c) & (target == c)).sum() for c in range(C))
        union = sum(((pred == c) | (target == c)).sum() for c in range(C))
        assert np.isclose(scores["iou_micro"], inter / union)
        share = [(target == c).mean() for c in range(C)]
        assert np.isclose(scores["iou_freq_weighted"], sum(s * i for s, i in zip(share, ious) if not np.isnan(i)))
        inter = sum(((pred == c) & (target == c)).sum() for c in range(1, C))
        union = sum(((pred == c) | (target == c)).sum() for c in range(1, C))
        assert np.isclose(scores["iou_excl_bg_micro"], inter / union)
        garment_share = np.array(share[1:]) / sum(share[1:])
        assert np.isclose(scores["iou_excl_bg_freq_weighted"], np.nansum(garment_share * np.array(ious[1:])))


def test_accumulated_is_not_the_mean_of_per_image_ious():
    pred, target = random_batch(0)
    conf = confusion_matrix(torch.from_numpy(pred), torch.from_numpy(target)).numpy()
    per_image = np.mean([np.nanmean(iou_per_class(naive_confusion(p, t))[1:]) for p, t in zip(pred, target)])
    assert not np.isclose(segmentation_scores(conf)["iou_excl_bg"], per_image)


def test_absent_class_is_left_out_of_the_mean():
    pred = target = np.array([[0, 1], [1, 0]])
    scores = segmentation_scores(naive_confusion(pred, target))
    assert scores["iou_excl_bg"] == 1.0 and np.isnan(scores["per_class"]["bag"])


def test_normalised_confusion():
    pred, target = random_batch(1)
    conf = naive_confusion(pred, target)
    rows, cols = normalize_confusion(conf, "rows"), normalize_confusion(conf, "columns")
    assert np.allclose(rows.sum(1), 1) and np.allclose(cols.sum(0), 1)
    i, j = 2, 5
    assert np.isclose(rows[i, j], ((target == i) & (pred == j)).sum() / (target == i).sum())
    assert np.isclose(cols[i, j], ((target == i) & (pred == j)).sum() / (pred == j).sum())


def test_classification_scores_against_naive():
    rng = np.random.default_rng(3)
    truth = rng.random((50, 8)) < 0.4
    pred = np.where(rng.random((50, 8)) < 0.8, truth, ~truth)
    s = classification_scores(pred, truth)
    f = {}
    for beta in (1, 2):
        per = []
        for k in range(8):
            tp = sum(p and t for p, t in zip(pred[:, k], truth[:, k]))
            fp = sum(p and not t for p, t in zip(pred[:, k], truth[:, k]))
            fn = sum(t and not p for p, t in zip(pred[:, k], truth[:, k]))
            prec, rec = tp / (tp + fp), tp / (tp + fn)
            per.append((1 + beta**2) * prec * rec / (beta**2 * prec + rec))
        f[beta] = np.mean(per)
    assert np.isclose(s["f1"], f[1]) and np.isclose(s["f2"], f[2])
    assert np.isclose(s["per_class_accuracy"]["top"], np.mean(pred[:, 0] == truth[:, 0]))
    assert np.isclose(s["exact_match"], np.mean([(p == t).all() for p, t in zip(pred, truth)]))

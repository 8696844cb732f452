"""Targets and the compound loss of section 3.3 (issue 3)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from clothparse_lib.data.base import region_box
from clothparse_lib.data.targets import box_targets, presence_and_boxes, presence_targets
from clothparse_lib.models import ModelOutput, build_model
from clothparse_lib.taxonomy import CLASS_INDEX, GARMENTS
from clothparse_lib.training import losses as L

pytestmark = pytest.mark.filterwarnings("ignore::clothparse_lib.models.encoders.RandomInitWarning")


def _rect_masks():
    """Two 40x30 masks with known rectangles, (x0, y0, x1, y1) in pixels, x1/y1 exclusive."""
    boxes = [{"top": (3, 2, 20, 15), "pants": (5, 15, 18, 38), "bag": (25, 20, 30, 28)},
             {"dress": (0, 0, 30, 40), "shoe": (10, 39, 11, 40)}]  # full-size dress, one-pixel shoe on top
    masks = torch.zeros(2, 40, 30, dtype=torch.uint8)
    for m, image_boxes in zip(masks, boxes):
        for g, (x0, y0, x1, y1) in image_boxes.items():
            m[y0:y1, x0:x1] = CLASS_INDEX[g]
    return masks, boxes


def _expected(boxes, h, w):
    present = torch.zeros(len(boxes), len(GARMENTS))
    rel = torch.zeros(len(boxes), len(GARMENTS), 4)
    for i, image_boxes in enumerate(boxes):
        for g, (x0, y0, x1, y1) in image_boxes.items():
            present[i, CLASS_INDEX[g] - 1] = 1
            rel[i, CLASS_INDEX[g] - 1] = torch.tensor([x0 / w, y0 / h, x1 / w, y1 / h])
    return present, rel


@pytest.mark.parametrize("dtype", [torch.uint8, torch.long])
def test_boxes_from_masks_equal_the_known_boxes(dtype):
    masks, boxes = _rect_masks()
    present, rel = _expected(boxes, 40, 30)
    assert torch.equal(presence_targets(masks.to(dtype)), present)
    assert torch.allclose(box_targets(masks.to(dtype)), rel, atol=1e-7)
    assert box_targets(masks).dtype == torch.float32


def test_boxes_from_synthetic_samples():
    synthetic = pytest.importorskip("clothparse_lib.data.synthetic")
    samples = [synthetic.make_sample(i, seed=0, height=96, width=64) for i in range(6)]
    masks = torch.stack([torch.from_numpy(s.mask) for s in samples])
    present, rel = _expected([s.info["boxes"] for s in samples], 96, 64)
    assert present.sum() >= 12
    got_present, got = presence_and_boxes(masks)
    assert torch.equal(got_present, present)
    assert torch.allclose(got, rel, atol=1e-7)


def test_region_box_is_the_box_target_in_pixels():
    """One box convention: the pixel box of a region (synthetic data, Parser) is the box target times W, H."""
    torch.manual_seed(0)
    masks = torch.randint(0, 9, (2, 17, 11))
    masks[1, :, :5] = 0
    masks[1, 3:9, 6:8] = CLASS_INDEX["bag"]
    masks[1][masks[1] == CLASS_INDEX["dress"]] = 0
    present, boxes = presence_and_boxes(masks)
    for m, p, b in zip(masks.numpy(), present, boxes):
        for k, g in enumerate(GARMENTS):
            box = region_box(m == CLASS_INDEX[g])
            assert (box is None) == (not p[k])
            if box is not None:
                assert torch.allclose(b[k] * torch.tensor([11, 17, 11, 17]), torch.tensor(box, dtype=torch.float))
    assert region_box(np.zeros((4, 4), bool)) is None and region_box(np.eye(4, dtype=bool)[::-1]) == (0, 0, 4, 4)


def test_targets_of_a_batch_equal_targets_of_each_image():
    torch.manual_seed(0)
    masks = torch.randint(0, 9, (3, 17, 11))
    masks[1] = 0
    stacked = torch.cat([box_targets(m[None]) for m in masks])
    assert torch.equal(box_targets(masks), stacked)
    assert torch.equal(box_targets(masks)[1], torch.zeros(8, 4))
    with pytest.raises(ValueError, match="integer"):
        box_targets(masks.float())


def _outputs(b=2, h=40, w=30, seed=0, requires_grad=True):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(*s, generator=g).requires_grad_(requires_grad) for s in ((b, 9, h, w), (b, 8), (b, 8, 4))]


def test_weighted_cross_entropy_background_1_garments_2():
    masks, _ = _rect_masks()
    seg = _outputs()[0]
    weight = torch.tensor([1.0] + [2.0] * 8)
    expected = F.cross_entropy(seg, masks.long(), weight=weight)
    assert torch.allclose(L.weighted_cross_entropy(seg, masks), expected)
    per_image = L.weighted_cross_entropy(seg, masks, reduction="none")
    assert torch.allclose(per_image[1], F.cross_entropy(seg[1:], masks[1:].long(), weight=weight))


def test_compound_loss_value():
    masks, boxes = _rect_masks()
    seg, cls, box = _outputs()
    present, rel = _expected(boxes, 40, 30)
    loss = L.ClothParsingLoss(w_bce=3.0, w_box=75.0)
    total = loss(ModelOutput(seg, cls, box), masks)
    ce = L.weighted_cross_entropy(seg, masks)
    bce = F.binary_cross_entropy_with_logits(cls, present)
    d = torch.sigmoid(box) - rel
    box_term = (0.5 * d**2)[present.bool()].mean()  # |d| < 1: smooth L1 (beta 1) is 0.5 d^2
    assert torch.allclose(total, ce + 3.0 * bce + 75.0 * box_term)
    terms = loss.last_terms
    assert set(terms) == {"ce", "bce", "box", "total"} and not terms["total"].requires_grad
    assert torch.allclose(terms["box"], box_term) and torch.allclose(terms["bce"], bce)
    loss.reduction = "none"  # per image, as fastai's get_preds(with_loss=True) asks
    assert loss(ModelOutput(seg, cls, box), masks).shape == (2,)


def test_absent_categories_contribute_nothing_to_the_box_loss():
    masks, boxes = _rect_masks()
    present = _expected(boxes, 40, 30)[0].bool()
    seg, cls, box = _outputs()
    base = L.loss_terms(ModelOutput(seg, cls, box), masks)["box"]
    moved = box.detach().clone()
    moved[~present] += 10.0 * torch.randn_like(moved[~present])
    assert torch.equal(L.loss_terms(ModelOutput(seg, cls, moved), masks)["box"], base)
    base.backward()
    assert (box.grad[~present] == 0).all() and (box.grad[present] != 0).all()
    empty = torch.zeros(2, 40, 30, dtype=torch.long)  # no garment at all: the term is 0, not NaN
    assert L.loss_terms(ModelOutput(seg, cls, box), empty)["box"].item() == 0.0


def test_plain_models_get_the_cross_entropy_alone():
    masks, _ = _rect_masks()
    seg = _outputs()[0]
    loss = L.ClothParsingLoss()
    assert torch.equal(loss(ModelOutput(seg), masks), L.weighted_cross_entropy(seg, masks))
    assert set(loss.last_terms) == {"ce", "total"}
    bce_only = L.loss_terms(ModelOutput(seg, _outputs()[1]), masks)  # class_branch_only's heads
    assert set(bce_only) == {"ce", "bce"}


def test_loss_is_fp32_under_autocast():
    from fastai.torch_core import to_float
    torch.manual_seed(0)
    model = build_model("extended", encoder="efficientnet-lite0", weights="imagenet", img_size=(64, 64))
    masks = torch.zeros(2, 64, 64, dtype=torch.long)
    masks[:, 10:40, 20:40] = CLASS_INDEX["skirt"]
    loss = L.ClothParsingLoss()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(torch.randn(2, 3, 64, 64))
        total = loss(out, masks)
    assert out.seg.dtype == torch.bfloat16
    assert total.dtype == torch.float32 and all(v.dtype == torch.float32 for v in loss.last_terms.values())
    assert torch.allclose(total, loss(to_float(out), masks))  # fastai's MixedPrecision.after_pred
    total.backward()
    assert model.box_branch[-1].weight.grad is not None


class _FixedOutputs(torch.nn.Module):
    def __init__(self, outputs):
        super().__init__()
        self.outputs = outputs

    def forward(self, x):
        return self.outputs


def test_calibration_weights_make_terms_even():
    masks, _ = _rect_masks()
    outputs = ModelOutput([o.detach() for o in _outputs()])
    model = _FixedOutputs(outputs).train()
    result = L.calibrate_loss_weights(model, [(None, masks)] * 3)
    terms = L.loss_terms(outputs, masks)
    assert result["n_batches"] == 3 and model.training
    assert result["w_bce"] == pytest.approx(float(terms["ce"] / terms["bce"]), rel=1e-6)
    assert result["w_box"] == pytest.approx(float(terms["ce"] / terms["box"]), rel=1e-6)
    assert result["w_bce"] * result["bce"] == pytest.approx(result["ce"], rel=1e-6)


def test_each_term_is_logged_by_fastai():
    from fastai.data.core import DataLoaders
    from fastai.learner import Learner
    torch.manual_seed(0)
    masks = torch.zeros(4, 64, 64, dtype=torch.long)
    masks[:, 8:40, 16:48] = CLASS_INDEX["top"]
    ds = list(zip(torch.randn(4, 3, 64, 64), masks))
    dls = DataLoaders.from_dsets(ds[:2], ds[2:], bs=2, device=torch.device("cpu"))
    model = build_model("extended", encoder="efficientnet-lite0", weights="imagenet", img_size=(64, 64))
    loss = L.ClothParsingLoss()
    learn = Learner(dls, model, loss_func=loss, metrics=L.loss_term_metrics(loss))
    with learn.no_logging():
        learn.fit(1, lr=1e-3)
    names = learn.recorder.metric_names
    assert {"loss_ce", "loss_bce", "loss_box"} <= set(names)
    values = dict(zip(names[1:], learn.recorder.values[-1]))  # names[0] is "epoch"
    weighted = values["loss_ce"] + loss.weights["bce"] * values["loss_bce"] + 75 * values["loss_box"]
    assert weighted == pytest.approx(values["valid_loss"], rel=1e-4)
    preds, targs = learn.get_preds()
    assert preds.shape == (2, 9, 64, 64) and torch.allclose(preds.sum(1), torch.ones(2, 64, 64), atol=1e-5)

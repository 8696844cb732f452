"""The deployable parser: ONNX export of every model (with the prior input), its card, onnxruntime inference without
the training stack, and its fidelity to the torch path on real CCP photos."""
import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from clothparse_lib.cli import PREDICT_OUTPUTS, main
from clothparse_lib.evaluation.parsing import Parser
from clothparse_lib.evaluation.predictor import Predictor
from clothparse_lib.inference import card as C
from clothparse_lib.inference import runtime
from clothparse_lib.inference.parsing import resize_logits
from clothparse_lib.models import PRIOR_MODELS, build_model
from clothparse_lib.models import export as E
from clothparse_lib.models.checkpoints import atomic_save, load_model, make_checkpoint, read_checkpoint
from clothparse_lib.storage import file_sha256
from clothparse_lib.taxonomy import CLASSES, COLORS, GARMENTS, known_garments

TINY = (64, 64)
CCP_PHOTOS = ("0001", "0002", "0010", "0020", "0100", "0500")  # CCP's photos (shapes and garments vary)


def _tiny_checkpoint(name: str, folder) -> "Path":  # noqa: F821
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random encoder: loudly warned, fine here
        torch.manual_seed(0)
        model = build_model(name, encoder="efficientnet-lite0", weights=None, img_size=TINY)
    manifest = {"model": name, "settings": {"encoder": "efficientnet-lite0"}, "size": list(TINY), "profile": "tiny",
                "seed": 3}
    path = folder / name / "best.pt"
    path.parent.mkdir(parents=True)
    atomic_save(make_checkpoint(manifest, {}, model.state_dict()), path)
    return path


# one model per kind of graph (each export takes 8-25 s on 2 cores; all eight names, trained, exported and compared in
# issue 20's note), the published profile's dry run's: the prior into the segmentation with the ClassBranch's output (extended;
# class_branch_only's gate takes the same inputs), the ClassBranch's output without a prior (branches: the plain U-Net's
# graph with the branches beside it), the segmentation alone (an smp baseline: the smp models share one wrapper)
EXPORTED = ("extended", "branches", "fpn")


@pytest.fixture(scope="module")
def trained(dry_run, tmp_path_factory):
    """The dry run's models of :data:`EXPORTED` (the tests' shared run: see ``tests/conftest.py``), exported by
    ``clothparse export`` from the run folder: (checkpoint, ONNX file, the card the export returned)."""
    folder, exported, cards, real = tmp_path_factory.mktemp("onnx"), {}, [], E.export_onnx

    def export_onnx(*args, **kwargs):  # the command's exporter, its card kept
        cards.append(real(*args, **kwargs))
        return cards[-1]

    with pytest.MonkeyPatch.context() as m:
        m.setattr(E, "export_onnx", export_onnx)
        for name in EXPORTED:
            dry_run.ensure(name)
            assert main(["export", "--checkpoint", name, "--run-dir", str(dry_run.run_dir),
                         "--out", str(folder / f"{name}.onnx")]) == 0
            exported[name] = (dry_run.model_dir(name) / "best.pt", folder / f"{name}.onnx", cards[-1])
    return exported


@pytest.mark.slow
@pytest.mark.parametrize("name", EXPORTED)
def test_each_model_exports_with_the_prior_input_where_it_has_one(name, trained):
    checkpoint, onnx_file, card = trained[name]
    onnx_model = runtime.OnnxModel(onnx_file, threads=1)
    assert onnx_model.takes_prior == (name in PRIOR_MODELS) == (card["prior"] is not None)
    assert [i.name for i in onnx_model.session.get_inputs()] == ["image"] + (["prior"] if name in PRIOR_MODELS else [])
    model = load_model(checkpoint, "cpu")
    assert onnx_model.session.get_inputs()[0].shape[1:] == [3, *model.img_size]  # the training size; the batch dynamic
    torch_model = Predictor(model, "cpu")
    images = np.random.default_rng(0).integers(0, 256, (3, 80, 50, 3), dtype=np.uint8)  # another size: squashed
    priors = [None]
    if name in PRIOR_MODELS:
        known = np.stack([known_garments(), known_garments("skirt", "dress"), known_garments(absent="top,bag")])
        priors += [known_garments(present="pants"), known]
    for prior in priors:
        for batch in (images[:1], images) if prior is None or prior.ndim == 1 else (images,):  # batch 1 and 3
            seg, cls = onnx_model.logits(batch, prior)
            want_seg, want_cls = torch_model.logits(batch, prior)
            assert seg.shape == (len(batch), len(CLASSES), *model.img_size)
            finite = np.isfinite(want_seg)
            assert (np.isfinite(seg) == finite).all() and np.allclose(seg[finite], want_seg[finite], atol=1e-4, rtol=1e-4)
            assert (cls is None) == (want_cls is None)
            if cls is not None:
                assert np.allclose(cls, want_cls, atol=1e-4, rtol=1e-4, equal_nan=True)
    if name not in PRIOR_MODELS:  # refused as the torch path refuses it
        with pytest.raises(ValueError, match="cannot take a class prior"):
            onnx_model.logits(images, known_garments("skirt"))


def test_the_card_states_what_inference_needs(trained, dry_run):
    checkpoint, out, card = trained["extended"]
    assert json.loads(C.card_path(out).read_text()) == card == C.read_card(out)
    assert C.card_path(out) == out.parent / "extended.json"
    assert card["format"] == C.CARD_FORMAT
    assert [c["name"] for c in card["classes"]] == list(CLASSES)
    assert [tuple(int(c["color"][i:i + 2], 16) for i in (1, 3, 5)) for c in card["classes"]] == [COLORS[c] for c in CLASSES]
    model, manifest = load_model(checkpoint, "cpu"), read_checkpoint(checkpoint)["manifest"]
    assert card["input"]["size"] == card["size"] == list(dry_run.profile.size)
    assert card["input"]["shape"] == ["batch", 3, *dry_run.profile.size]
    assert (card["input"]["mean"], card["input"]["std"]) == tuple(list(map(float, v)) for v in model.normalization)
    assert card["prior"]["garments"] == list(GARMENTS) and card["prior"]["shape"] == ["batch", 8]
    assert (card["model"], card["encoder"], card["profile"], card["seed"]) == (
        "extended", manifest["settings"]["encoder"], dry_run.profile.name, 0)
    evaluation = json.loads((checkpoint.parent / "evaluation.json").read_text())  # the run folder's test scores
    scores = evaluation["scores"]
    assert card["test"] == {"split": evaluation["split"], "data": evaluation["data"], "images": evaluation["n_images"],
                            **{k: scores["none"][k] for k in ("iou_excl_bg", "iou_overall", "iou_mask")},
                            "iou_excl_bg_with_true_prior": scores["gt"]["iou_excl_bg"]}
    assert card["checkpoint"]["digest"] == read_checkpoint(checkpoint)["digest"]
    assert card["checkpoint"]["sha256"] == file_sha256(checkpoint)
    assert card["onnx"] == {"file": "extended.onnx", "sha256": file_sha256(out), "opset": E.OPSET}
    assert not list(out.parent.glob(".*partial"))


def test_export_refuses_what_it_cannot_export(tmp_path, capsys, monkeypatch):
    not_a_checkpoint = tmp_path / "best.pt"
    not_a_checkpoint.write_bytes(b"not a checkpoint")
    checkpoint = _tiny_checkpoint("plain_unet", tmp_path)
    for args, message in [
            ([str(not_a_checkpoint), tmp_path / "a.onnx"], "is not a clothparse checkpoint"),
            ([str(checkpoint), tmp_path / "a.txt"], "must name an .onnx file"),
            (["fpn", tmp_path / "a.onnx"], "neither a file nor a model")]:
        assert main(["export", "--checkpoint", args[0], "--out", str(args[1]), "--run-dir", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err

    def broken(*args, **kwargs):
        raise RuntimeError("an operator the exporter does not know\nand a long trace")

    monkeypatch.setattr(torch.onnx, "export", broken)
    assert main(["export", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "b.onnx")]) == 2
    err = capsys.readouterr().err
    assert "model 'plain_unet' cannot be exported to ONNX (RuntimeError: an operator the exporter" in err
    assert len(err.strip().splitlines()) == 1
    assert not list(tmp_path.glob("*.onnx")) and not list(tmp_path.glob(".*partial")) and not list(tmp_path.glob("*.json"))


def test_an_interrupted_export_leaves_nothing_behind(tmp_path, monkeypatch, capsys):
    """Ctrl-C after the exporter wrote its partial file: no partial file, nothing written, exit 130 in one line."""
    checkpoint = _tiny_checkpoint("plain_unet", tmp_path)

    def interrupted(graph, args, path, **kwargs):
        Path(path).write_bytes(b"half a graph")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch.onnx, "export", interrupted)
    assert main(["export", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "m.onnx")]) == 130
    assert capsys.readouterr().err.strip() == "clothparse export: interrupted (SIGINT)"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain_unet"]


def test_a_graph_that_differs_from_the_model_is_refused(trained, tmp_path, monkeypatch):
    checkpoint, onnx_file, _ = trained["fpn"]
    # the exporter's file: the fixture's export of the same checkpoint (the exporter is not what is tested here)
    monkeypatch.setattr(torch.onnx, "export", lambda graph, args, path, **kwargs: shutil.copy(onnx_file, path))
    real_check, forward = E._check, E._Graph.forward
    checked = []

    def check(graph, args, path, names):  # the eager model shifted by 1 after the export: the graph no longer matches
        checked.append(path)
        monkeypatch.setattr(E._Graph, "forward", lambda self, *a: tuple(t + 1 for t in forward(self, *a)))
        return real_check(graph, args, path, names)

    monkeypatch.setattr(E, "_check", check)
    with pytest.raises(ValueError, match="'seg' differs from the model's"):
        E.export_onnx(checkpoint, tmp_path / "m.onnx")
    assert checked and not checked[0].exists() and not (tmp_path / "m.onnx").exists()
    assert not (tmp_path / "m.json").exists()


def test_resize_logits_is_torchs_bilinear():
    seg = np.random.default_rng(1).normal(size=(9, 32, 24)).astype(np.float32)
    for size in [(32, 24), (600, 401), (17, 9), (64, 23)]:
        want = F.interpolate(torch.from_numpy(seg)[None], size=size, mode="bilinear", align_corners=False)[0].numpy()
        assert np.allclose(resize_logits(seg, size, rows=100), want, atol=1e-5)


def test_onnx_parsing_does_not_load_torch_or_the_training_stack(trained, tmp_path):
    _, onnx_file, _ = trained["extended"]
    photo = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(2).integers(0, 256, (90, 70, 3), dtype=np.uint8)).save(photo)
    code = ("import sys\nfrom clothparse_lib.cli import main\n"
            f"code = main(['predict', '--backend', 'onnx', '--model', {str(onnx_file)!r}, '--present', 'skirt', "
            f"'--out', {str(tmp_path / 'out')!r}, {str(photo)!r}])\n"
            "print(code, sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'fastai', 'torchvision', "
            "'timm', 'segmentation_models_pytorch') or m.startswith(('clothparse_lib.models', "
            "'clothparse_lib.training'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "0 []", out.stdout + out.stderr
    assert all((tmp_path / "out" / p.format("photo")).is_file() for p in PREDICT_OUTPUTS)


def _predict(backend_args, photos, out, *flags) -> dict:
    assert main(["predict", *backend_args, "--out", str(out), *flags, *map(str, photos)]) == 0
    return {p.stem: (np.asarray(Image.open(out / f"{p.stem}.png")), json.loads((out / f"{p.stem}.json").read_text()))
            for p in photos}


@pytest.mark.parametrize("name", ["extended", "fpn"])  # with a prior and without (refused by both backends)
def test_the_backends_agree_on_ccp_photos(name, trained, ccp_root, tmp_path, capsys):
    checkpoint, onnx_file, _ = trained[name]
    photos = [ccp_root / "photos" / f"{i}.jpg" for i in CCP_PHOTOS]
    flag_sets = [(), ("--present", "skirt", "--absent", "dress", "--absent", "pants")] if name in PRIOR_MODELS else [()]
    for k, flags in enumerate(flag_sets):
        by_torch = _predict(["--checkpoint", str(checkpoint), "--device", "cpu"], photos, tmp_path / f"torch{k}", *flags)
        by_onnx = _predict(["--backend", "onnx", "--model", str(onnx_file)], photos, tmp_path / f"onnx{k}", *flags)
        agree = sum((by_torch[p][0] == by_onnx[p][0]).sum() for p in by_torch)
        total = sum(by_torch[p][0].size for p in by_torch)
        assert agree / total >= 0.999, (name, flags, agree / total)
        for p in by_torch:
            t, o = by_torch[p][1], by_onnx[p][1]
            assert [g["name"] for g in t["garments"]] == [g["name"] for g in o["garments"]], (name, flags, p)
            for gt, go in zip(t["garments"], o["garments"]):
                assert abs(gt["pixel_share"] - go["pixel_share"]) < 1e-3
                assert (gt["presence_probability"] is None) == (go["presence_probability"] is None)
                if gt["presence_probability"] is not None:
                    assert abs(gt["presence_probability"] - go["presence_probability"]) < 1e-4
            if "--absent" in flags:
                assert not {"dress", "pants"} & {g["name"] for g in o["garments"]}
    capsys.readouterr()
    if name not in PRIOR_MODELS:  # a prior refused by both backends, in one line
        for args in (["--checkpoint", str(checkpoint)], ["--backend", "onnx", "--model", str(onnx_file)]):
            for flag in ("--present", "--absent"):
                assert main(["predict", *args, flag, "skirt", "--out", str(tmp_path / "x"), str(photos[0])]) == 2
                err = capsys.readouterr().err
                assert "cannot take a class prior" in err and len(err.strip().splitlines()) == 1


def test_the_python_api_of_both_backends(trained, tmp_path):
    checkpoint, onnx_file, _ = trained["extended"]
    image = np.random.default_rng(3).integers(0, 256, (120, 80, 3), dtype=np.uint8)
    by_torch = Parser.from_checkpoint(checkpoint, "cpu").parse(image, present=["skirt"], absent="dress")
    by_onnx = Parser.from_onnx(onnx_file, threads=1).parse(image, present=["skirt"], absent="dress")
    assert by_onnx.mask.shape == (120, 80) and (by_torch.mask == by_onnx.mask).mean() >= 0.999
    assert [g.name for g in by_torch.garments] == [g.name for g in by_onnx.garments]
    with pytest.raises(ValueError, match="both present and absent"):
        Parser.from_onnx(onnx_file).parse(image, present="dress", absent="dress")

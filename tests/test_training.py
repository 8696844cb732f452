"""clothparse train + evaluate + predict end to end on the synthetic set, checkpoints, resume."""
import json
import shutil
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from clothparse_lib.cli import main
from clothparse_lib.data.prepared import prepare_dataset
from clothparse_lib.data.synthetic import make_sample
from clothparse_lib.evaluation.scores import evaluate
from clothparse_lib.models import build_model
from clothparse_lib.models.checkpoints import load_model, read_checkpoint

TRAIN = ["--profile", "smoke", "--quiet", "--device", "cpu"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The smoke profile's extended model, trained by the CLI (shared by the tests of this module)."""
    run = tmp_path_factory.mktemp("run")
    assert main(["train", *TRAIN, "--model", "extended", "--run-dir", str(run), "--epochs-frozen", "2",
                 "--epochs-unfrozen", "4", "--lr-frozen", "1e-2", "--lr-unfrozen", "2e-3"]) == 0
    return run


def test_training_lowers_the_loss_and_raises_iou(trained):
    history = pd.read_csv(trained / "models" / "extended" / "history.csv")
    assert list(history["phase"]) == [1] * (history["phase"] == 1).sum() + [2] * (history["phase"] == 2).sum()
    for term in ("train_loss_ce", "train_loss_bce", "train_loss_box", "valid_loss", "valid_iou_excl_bg"):
        assert history[term].notna().all(), term
    prepared = prepare_dataset("smoke", run_dir=trained, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.manual_seed(0)
        untrained = build_model("extended", encoder="efficientnet-lite0", weights="imagenet", img_size=prepared.cache.size)
    before = evaluate(untrained, prepared.cache, prepared.split, "valid", device="cpu", progress=False)
    after = evaluate(load_model(trained / "models" / "extended" / "best.pt", "cpu"), prepared.cache, prepared.split,
                     "valid", device="cpu", progress=False)
    assert after.per_image["ce"].mean() < 0.7 * before.per_image["ce"].mean()
    assert after.scores()["none"]["iou_excl_bg"] > before.scores()["none"]["iou_excl_bg"] + 0.05


def test_checkpoint_round_trip_and_manifest(trained):
    folder = trained / "models" / "extended"
    manifest = json.loads((folder / "manifest.json").read_text())
    for key in ("profile", "model", "seed", "settings", "git_commit", "environment", "data", "checkpoints"):
        assert key in manifest
    assert manifest["settings"]["encoder"] == "efficientnet-lite0" and manifest["data"]["fingerprint"]
    ckpt = read_checkpoint(folder / "best.pt")
    model = load_model(folder / "best.pt", "cpu")
    again = load_model(folder / "best.pt", "cpu")
    x = torch.randn(2, 3, *model.img_size)
    with torch.no_grad():
        assert torch.equal(model(x).seg, again(x).seg)
    assert all(torch.equal(v, ckpt["model"][k]) for k, v in model.state_dict().items())


def test_tampered_or_wrong_checkpoints_are_refused(trained, tmp_path):
    best = trained / "models" / "extended" / "best.pt"
    copy = tmp_path / "best.pt"
    data = bytearray(best.read_bytes())
    data[len(data) // 2] ^= 0xFF  # a flipped bit inside the weights
    copy.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="do not match the digest"):
        read_checkpoint(copy)
    (tmp_path / "manifest.json").write_text((best.parent / "manifest.json").read_text())
    with pytest.raises(ValueError, match="modified after training"):
        read_checkpoint(copy)
    (tmp_path / "manifest.json").unlink()
    copy.write_bytes(best.read_bytes()[: len(data) // 3])  # truncated
    with pytest.raises(ValueError, match="not a readable"):
        read_checkpoint(copy)
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a clothparse checkpoint"):
        read_checkpoint(tmp_path / "other.pt")
    ckpt = torch.load(best, weights_only=True)  # the manifest inside relabelled: the digest covers it too
    ckpt["manifest"] = ckpt["manifest"].replace('"model": "extended"', '"model": "plain_unet"')
    torch.save(ckpt, tmp_path / "relabelled.pt")
    with pytest.raises(ValueError, match="was modified: its manifest, state or weights"):
        read_checkpoint(tmp_path / "relabelled.pt")
    torch.save({"format": 2, "model": Arbitrary()}, tmp_path / "pickle.pt")
    with pytest.raises(ValueError, match="not a clothparse checkpoint .* will not be unpickled") as refused:
        read_checkpoint(tmp_path / "pickle.pt")
    assert "weights_only" not in str(refused.value), "no advice to unpickle it anyway"
    torch.save({"format": 1, "manifest": "{}", "state": {}, "model": {}}, tmp_path / "old.pt")
    with pytest.raises(ValueError, match="older clothparse"):
        read_checkpoint(tmp_path / "old.pt")


class Arbitrary:
    """Any object but tensors and plain values: unpickling it could run code."""


def test_cli_evaluate_writes_results(trained, capsys):
    assert main(["evaluate", *TRAIN, "--model", "extended", "--run-dir", str(trained)]) == 0
    assert "IoU excl. bg" in capsys.readouterr().out
    folder = trained / "models" / "extended"
    result = json.loads((folder / "evaluation.json").read_text())
    assert set(result["scores"]) == {"none", "gt", "partial", "classbranch"}
    conf = np.load(folder / "confusion.npz")
    per_image = pd.read_csv(folder / "per_image.csv")
    assert len(per_image) == result["n_images"]
    assert conf["none"].sum() == conf["gt"].sum() == result["n_images"] * 96 * 64


def test_cli_predict(trained, tmp_path, capsys):
    images = []
    for i, size in enumerate([(150, 100), (203, 131)]):
        path = tmp_path / f"photo{i}.jpg"
        Image.fromarray(make_sample(500 + i, 9, *size).image).save(path)
        images.append(str(path))
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    out = tmp_path / "out"
    best = str(trained / "models" / "extended" / "best.pt")
    code = main(["predict", "--checkpoint", best, "--out", str(out), "--absent", "dress", images[0],
                 str(tmp_path / "broken.jpg"), images[1]])
    captured = capsys.readouterr()
    assert code == 1 and "broken.jpg" in captured.err
    for i, size in enumerate([(150, 100), (203, 131)]):
        mask = np.asarray(Image.open(out / f"photo{i}.png"))
        assert mask.shape == size and mask.max() <= 8 and mask.dtype == np.uint8
        assert not (mask == 6).any(), "dress was declared absent"
        assert Image.open(out / f"photo{i}_overlay.jpg").size == size[::-1]
        info = json.loads((out / f"photo{i}.json").read_text())
        for g in info["garments"]:
            assert set(g) == {"name", "pixel_share", "box", "presence_probability", "dominant_color", "color_name"}
    assert not (out / "broken.png").exists()
    assert main(["predict", "--checkpoint", best, "--out", str(out), "--present", "hat", images[0]]) == 2
    assert "unknown garment class 'hat'" in capsys.readouterr().err
    assert main(["predict", "--checkpoint", str(tmp_path / "broken.jpg"), "--out", str(out), images[0]]) == 2
    # a model of the run folder by name, as the README shows
    assert main(["predict", "--checkpoint", "extended", "--run-dir", str(trained), "--out", str(tmp_path / "by_name"),
                 images[0]]) == 0
    assert (tmp_path / "by_name" / "photo0.png").exists()


def test_predict_never_overwrites_a_photo_and_keeps_outputs_apart(trained, tmp_path, capsys):
    best = str(trained / "models" / "extended" / "best.pt")
    photos = {"a": tmp_path / "a" / "photo.jpg", "b": tmp_path / "b" / "photo.png"}  # the same name twice
    for i, path in enumerate(photos.values()):
        path.parent.mkdir()
        Image.fromarray(make_sample(600 + i, 9, 150, 100).image).save(path)
    mine = photos["b"].read_bytes()
    assert main(["predict", "--checkpoint", best, "--out", str(photos["b"].parent), str(photos["b"])]) == 2
    assert "holds input photos" in capsys.readouterr().err and photos["b"].read_bytes() == mine
    out = tmp_path / "out"
    assert main(["predict", "--checkpoint", best, "--out", str(out), str(photos["a"]), str(photos["b"])]) == 0
    assert json.loads((out / "photo.json").read_text())["image"] == str(photos["a"])
    assert json.loads((out / "photo-2.json").read_text())["image"] == str(photos["b"])
    assert "written as photo-2" in capsys.readouterr().out
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["predict", "--checkpoint", best, "--out", str(tmp_path / "notes.txt"), str(photos["a"])]) == 2
    assert "is a file" in capsys.readouterr().err and (tmp_path / "notes.txt").read_text() == "mine"
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    assert main(["predict", "--checkpoint", best, "--out", str(tmp_path / "nothing"), str(tmp_path / "broken.jpg")]) == 1
    assert not (tmp_path / "nothing").exists(), "no output folder when every photo failed"


def test_predict_reports_an_oversized_photo_and_parses_the_others(trained, tmp_path, bomb_png, capsys):
    photo = tmp_path / "photo.jpg"
    Image.fromarray(make_sample(700, 9, 150, 100).image).save(photo)
    code = main(["predict", "--checkpoint", str(trained / "models" / "extended" / "best.pt"), "--out",
                 str(tmp_path / "out"), str(bomb_png), str(photo)])
    err = capsys.readouterr().err
    assert code == 1 and f"{bomb_png}: image file too large" in err and len(err.splitlines()) == 1
    assert (tmp_path / "out" / "photo.png").exists()


def test_evaluate_refuses_a_checkpoint_of_another_model(trained, tmp_path, capsys):
    folder = tmp_path / "models" / "plain_unet"  # holding the extended model
    folder.mkdir(parents=True)
    shutil.copy(trained / "models" / "extended" / "best.pt", folder / "best.pt")
    assert main(["evaluate", *TRAIN, "--model", "plain_unet", "--run-dir", str(tmp_path)]) == 2
    assert "its manifest says model 'extended' (asked: 'plain_unet')" in capsys.readouterr().err
    assert not (folder / "evaluation.json").exists()


def test_killed_run_resumes_where_it_stopped(tmp_path, killed_after_first_epoch):
    """A run killed after its first epoch continues from last.pt and ends like an uninterrupted one."""
    args = ["train", *TRAIN, "--model", "plain_unet", "--epochs-frozen", "2", "--epochs-unfrozen", "1"]
    with killed_after_first_epoch():
        main([*args, "--run-dir", str(tmp_path / "a")])
    assert len(pd.read_csv(tmp_path / "a" / "models" / "plain_unet" / "history.csv")) == 1
    assert main([*args, "--run-dir", str(tmp_path / "a")]) == 0
    assert main([*args, "--run-dir", str(tmp_path / "b")]) == 0
    resumed = pd.read_csv(tmp_path / "a" / "models" / "plain_unet" / "history.csv")
    straight = pd.read_csv(tmp_path / "b" / "models" / "plain_unet" / "history.csv")
    assert list(resumed[["phase", "epoch"]].itertuples(index=False)) == [(1, 1), (1, 2), (2, 1)]
    # Weights, optimizer, random generators and fastai's smoothed loss are restored: the resumed run repeats
    # the straight one (before: 1-5 % apart after the kill, fastai's n_inp drawing random numbers on resuming).
    pd.testing.assert_frame_equal(resumed.drop(columns="seconds"), straight.drop(columns="seconds"))
    assert resumed["valid_loss"].iloc[1] < 0.95 * resumed["valid_loss"].iloc[0], "not restarted from scratch"


def test_progressive_resizing_resumes_across_the_size_change(tmp_path, killed_after_first_epoch):
    """Phase 1 at a smaller size, phase 3 at the profile's: a run killed at the size change resumes at the final size
    and ends like an uninterrupted one; the manifest records the sizes, best.pt comes from the final size."""
    from dataclasses import replace

    from clothparse_lib.models.checkpoints import is_finished
    from clothparse_lib.training.loop import train_model

    prepared = prepare_dataset("smoke", run_dir=tmp_path / "data", progress=False)
    settings = replace(prepared.profile.train, epochs_frozen=1, epochs_unfrozen=0, early_size=(64, 32), epochs_final=2)
    assert prepared.cache.size == (96, 64)

    def train(run):
        return train_model(prepared, "extended", settings, tmp_path / run, device="cpu", progress=False)

    with killed_after_first_epoch():
        train("a")
    assert not is_finished(tmp_path / "a" / "models" / "extended")
    resumed, straight = train("a"), train("b")
    histories = [pd.read_csv(f / "history.csv") for f in (resumed, straight)]
    assert list(histories[0][["phase", "epoch", "size"]].itertuples(index=False)) == [
        (1, 1, "64x32"), (3, 1, "96x64"), (3, 2, "96x64")]
    pd.testing.assert_frame_equal(*(h.drop(columns="seconds") for h in histories))
    manifest = json.loads((resumed / "manifest.json").read_text())
    assert manifest["size"] == [96, 64]
    assert [(p["phase"], p["size"]) for p in manifest["phases"]] == [(1, [64, 32]), (3, [96, 64])]
    assert manifest["phases"][0]["cache"] != manifest["phases"][1]["cache"] == prepared.cache.path.name
    assert is_finished(resumed)
    final_best = histories[0]["valid_iou_excl_bg"].iloc[1:].max()
    assert read_checkpoint(resumed / "best.pt")["state"]["best_iou"] == pytest.approx(final_best)
    model = load_model(resumed / "best.pt", "cpu")
    assert model.img_size == (96, 64)
    with torch.no_grad():  # the BBbranch takes the early size's map too, pooled to its grid
        assert model(torch.randn(1, 3, 64, 32)).box.shape == model(torch.randn(1, 3, 96, 64)).box.shape

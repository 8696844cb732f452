"""Photos read as people see them: EXIF orientation (phones), 16-bit images; data sets read as annotated."""
import json
import shutil
import struct
import zlib

import numpy as np
import pandas as pd
import pytest
import scipy.io
from PIL import Image

from clothparse_lib.cli import main
from clothparse_lib.data import DataError, build_cache
from clothparse_lib.data.base import read_rgb
from clothparse_lib.data.ccp import CCPSource
from clothparse_lib.data.fixtures import write_imaterialist_fixture
from clothparse_lib.data.imaterialist import IMaterialistSource
from clothparse_lib.data.synthetic import make_sample
from clothparse_lib.evaluation.parsing import Parser
from clothparse_lib.models import build_model
from clothparse_lib.models.checkpoints import atomic_save, make_checkpoint

ORIENTATION = 0x0112  # EXIF tag; 6: rotate 90 degrees clockwise to display (a phone's portrait photo)


def save_as_phone(upright: np.ndarray, path) -> None:
    """``upright`` stored landscape (90 degrees counter-clockwise) with EXIF orientation 6, as a phone saves it."""
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    Image.fromarray(np.rot90(upright)).save(path, exif=exif, quality=95)


def png16(pixels: np.ndarray) -> bytes:
    """A 16-bit PNG (grayscale HxW or RGB HxWx3; PIL writes no 16-bit RGB)."""
    h, w = pixels.shape[:2]
    color = 2 if pixels.ndim == 3 else 0
    raw = b"".join(b"\0" + row.astype(">u2").tobytes() for row in pixels)
    chunk = lambda kind, data: struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))  # noqa: E731
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, color, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """An untrained extended model's checkpoint (what is parsed does not matter, only that both ways agree)."""
    model = build_model("extended", encoder="efficientnet-lite0", weights=None, img_size=(96, 64))
    manifest = {"model": "extended", "settings": {"encoder": "efficientnet-lite0"}, "size": [96, 64]}
    path = tmp_path_factory.mktemp("model") / "best.pt"
    atomic_save(make_checkpoint(manifest, {}, model.state_dict()), path)
    return path


def test_a_phone_photo_is_parsed_upright(checkpoint, tmp_path):
    phone = tmp_path / "phone.jpg"
    save_as_phone(make_sample(1, 9, 150, 100).image, phone)
    with Image.open(phone) as im:  # the stored pixels, turned as a viewer turns them
        upright = np.rot90(np.asarray(im), k=-1)
    assert upright.shape == (150, 100, 3)
    assert (read_rgb(phone, "phone") == upright).all()
    Image.fromarray(upright).save(tmp_path / "upright.png")
    parser = Parser.from_checkpoint(checkpoint, "cpu")
    parsed = parser.parse(phone)
    assert parsed.mask.shape == (150, 100) and (parsed.mask == parser.parse(upright).mask).all()
    assert main(["predict", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "out"), str(phone),
                 str(tmp_path / "upright.png")]) == 0
    info, same = (json.loads((tmp_path / "out" / f"{n}.json").read_text()) for n in ("phone", "upright"))
    assert (info["height"], info["width"]) == (150, 100) and info["garments"] == same["garments"]
    assert Image.open(tmp_path / "out" / "phone.png").size == Image.open(tmp_path / "out" / "phone_overlay.jpg").size == (100, 150)
    assert (np.asarray(Image.open(tmp_path / "out" / "phone.png")) == parsed.mask).all()


def test_16_bit_images_are_scaled_to_8_bits(checkpoint, tmp_path):
    rgb = make_sample(2, 9, 150, 100).image
    gray = np.asarray(Image.fromarray(rgb).convert("L"))
    Image.fromarray(gray).save(tmp_path / "gray8.png")
    (tmp_path / "gray16.png").write_bytes(png16(gray.astype(np.uint16) * 257))
    (tmp_path / "rgb16.png").write_bytes(png16(rgb.astype(np.uint16) * 256 + 99))  # high byte: the 8 bits
    assert Image.open(tmp_path / "gray16.png").mode == "I;16"
    assert (read_rgb(tmp_path / "gray16.png", "gray16") == gray[..., None]).all()
    assert (read_rgb(tmp_path / "rgb16.png", "rgb16") == rgb).all()
    parser = Parser.from_checkpoint(checkpoint, "cpu")
    assert (parser.parse(tmp_path / "gray16.png").mask == parser.parse(tmp_path / "gray8.png").mask).all()
    assert main(["predict", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "out"),
                 str(tmp_path / "gray16.png"), str(tmp_path / "gray8.png")]) == 0
    assert (np.asarray(Image.open(tmp_path / "out" / "gray16.png")) ==
            np.asarray(Image.open(tmp_path / "out" / "gray8.png"))).all()


def test_imaterialist_follows_the_size_of_its_masks(tmp_path):
    """A tagged photo's masks were drawn on it as stored or as displayed: train.csv's size says which."""
    expected = write_imaterialist_fixture(tmp_path, n=4, seed=5, jumpsuit_every=0)
    displayed, stored, neither, plain = sorted(expected)
    csv = pd.read_csv(tmp_path / "train.csv", dtype=str)
    originals = {i: np.asarray(Image.open(tmp_path / "train" / i)) for i in expected}
    save_as_phone(originals[displayed], tmp_path / "train" / displayed)  # masks of the upright photo
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    Image.fromarray(originals[stored]).save(tmp_path / "train" / stored, exif=exif, quality=95)  # masks as stored
    save_as_phone(originals[neither], tmp_path / "train" / neither)
    csv.loc[csv["ImageId"] == neither, ["Height", "Width"]] = ["100", "100"]
    csv.to_csv(tmp_path / "train.csv", index=False)
    src = IMaterialistSource(tmp_path)
    for image_id in (displayed, stored, plain):
        sample = src.read(image_id)
        assert (sample.mask == expected[image_id]).all()
        assert np.abs(sample.image.astype(int) - originals[image_id]).mean() < 3, image_id  # (JPEG again)
    with pytest.raises(DataError, match="size_mismatch"):
        src.read(neither)
    cache = build_cache(src, (64, 64), root=tmp_path / "cache", workers=1, progress=False)
    assert sorted(cache.index["image_id"]) == [displayed, stored, plain]
    assert cache.manifest["skipped_while_caching"]["counts"] == {"size_mismatch": 1}


@pytest.mark.ccp
def test_ccp_photos_are_read_as_annotated(ccp_root, tmp_path):
    root = tmp_path / "ccp"
    (root / "photos").mkdir(parents=True)
    (root / "annotations" / "pixel-level").mkdir(parents=True)
    shutil.copy(ccp_root / "label_list.mat", root)
    for i in ("0001", "0002"):
        shutil.copy(ccp_root / "annotations" / "pixel-level" / f"{i}.mat", root / "annotations" / "pixel-level")
    photo = np.asarray(Image.open(ccp_root / "photos" / "0001.jpg"))
    save_as_phone(photo, root / "photos" / "0001.jpg")  # annotated upright, stored landscape
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    Image.open(ccp_root / "photos" / "0002.jpg").save(root / "photos" / "0002.jpg", exif=exif, quality=95)  # as stored
    src = CCPSource(root)
    for i in ("0001", "0002"):
        gt = scipy.io.loadmat(root / "annotations" / "pixel-level" / f"{i}.mat")["groundtruth"]
        original = np.asarray(Image.open(ccp_root / "photos" / f"{i}.jpg")).astype(int)
        sample = src.read(i)
        assert sample.image.shape[:2] == gt.shape and np.abs(sample.image - original).mean() < 3, i

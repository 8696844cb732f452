import numpy as np
import pandas as pd
import pytest
from PIL import Image

from clothparse_lib.data import DataError, build_cache
from clothparse_lib.data.fixtures import rle_decode_per_pixel, write_imaterialist_fixture
from clothparse_lib.data.imaterialist import IMaterialistSource, rle_decode, rle_encode


def test_kaggle_convention_column_major_one_indexed():
    m = rle_decode("1 2 7 1", 3, 4)  # pixels 0,1 (column 0, rows 0-1) and 6 (column 2, row 0)
    expected = np.zeros((3, 4), bool)
    expected[0, 0] = expected[1, 0] = expected[0, 2] = True
    assert (m == expected).all()
    assert rle_encode(expected) == "1 2 7 1"


def test_round_trip_and_reference_on_random_masks():
    rng = np.random.default_rng(0)
    for h, w in [(1, 1), (5, 7), (64, 48), (37, 91)]:
        for density in (0.0, 0.1, 0.5, 1.0):
            m = rng.random((h, w)) < density
            rle = rle_encode(m)
            assert (rle_decode(rle, h, w) == m).all()
            assert (rle_decode_per_pixel(rle, h, w) == m).all()


def test_adjacent_runs_merge_and_empty_rle():
    assert rle_decode("1 2 3 2", 2, 2).all()
    assert not rle_decode("", 2, 2).any()


@pytest.mark.parametrize("rle, message", [
    ("1 2 3", "odd number"),
    ("1 two", "non-numeric"),
    ("1 2.5", "non-numeric"),
    ("0 2", "below 1"),
    ("5 0", "positive"),
    ("10 5", "beyond"),
    ("1 5 3 2", "overlap"),
    ("6 2 1 2", "increasing"),
    ("1 99999999999999999999", "too large"),  # beyond int64
])
def test_malformed_rle_is_a_clear_error(rle, message):
    with pytest.raises(ValueError, match=message):
        rle_decode(rle, 3, 4)


@pytest.fixture
def kaggle(tmp_path):
    expected = write_imaterialist_fixture(tmp_path, n=10, seed=3)
    return tmp_path, expected


def test_reader_reproduces_masks_ignores_parts_and_excludes_jumpsuits(kaggle):
    root, expected = kaggle
    src = IMaterialistSource(root)
    assert src.ids() == sorted(expected)
    assert src.skipped.counts == {"excluded_category": 2}
    for image_id, mask in expected.items():
        s = src.read(image_id)
        assert s.image.shape[:2] == mask.shape
        assert (s.mask == mask).all(), image_id


def test_paint_order_puts_overtop_over_top_and_bag_on_top(tmp_path):
    (image_id,) = write_imaterialist_fixture(tmp_path, n=1)
    h, w = 192, 128
    a, b = np.zeros((h, w), bool), np.zeros((h, w), bool)
    a[10:50, 10:50], b[30:80, 30:80] = True, True
    rows = [("0", a), ("4", b), ("24", a)]  # shirt, jacket over it, bag over both where they overlap
    csv = pd.DataFrame([{"ImageId": image_id, "EncodedPixels": rle_encode(m), "Height": h, "Width": w, "ClassId": c}
                        for c, m in rows])
    csv.to_csv(tmp_path / "train.csv", index=False)
    mask = IMaterialistSource(tmp_path).read(image_id).mask
    assert mask[35, 35] == 8  # bag (painted last)
    assert mask[60, 60] == 2  # jacket
    assert mask[15, 15] == 8


def _rewrite(root, **changes):
    csv = pd.read_csv(root / "train.csv", dtype=str)
    first = csv["ImageId"].iloc[0]
    for col, value in changes.items():
        csv.loc[csv["ImageId"] == first, col] = value
    csv.to_csv(root / "train.csv", index=False)
    return first


@pytest.mark.parametrize("changes, reason", [
    ({"EncodedPixels": "1 2 3"}, "bad_rle"),
    ({"EncodedPixels": "1 99999999999999999999"}, "bad_rle"),  # too large for int64
    ({"Height": "100"}, "size_mismatch"),
    ({"Height": ""}, "bad_size"),
    ({"Width": "wide"}, "bad_size"),
])
def test_bad_rows_name_the_image_and_reason(kaggle, changes, reason):
    root, expected = kaggle
    first = _rewrite(root, **changes)
    src = IMaterialistSource(root)
    with pytest.raises(DataError, match=reason) as e:
        src.read(first)
    assert e.value.image_id == first
    cache = build_cache(src, (64, 64), root=root / "cache", workers=1, progress=False)  # skip mode counts it
    assert first not in set(cache.index["image_id"]) and len(cache) == len(expected) - 1
    assert cache.manifest["skipped_while_caching"]["counts"] == {reason: 1}
    with pytest.raises(DataError, match=reason):
        build_cache(src, (64, 64), root=root / "cache", workers=1, progress=False, on_error="raise", force=True)


def test_missing_and_corrupt_images(kaggle, bomb_png):
    root, expected = kaggle
    ids = sorted(expected)
    (root / "train" / ids[0]).unlink()
    (root / "train" / ids[1]).write_bytes(b"not a jpeg")
    (root / "train" / ids[2]).write_bytes(bomb_png.read_bytes())
    src = IMaterialistSource(root)
    with pytest.raises(DataError, match="missing"):
        src.read(ids[0])
    with pytest.raises(DataError, match="unreadable"):
        src.read(ids[1])
    with pytest.raises(DataError, match="too large"):
        src.read(ids[2])
    with pytest.raises(DataError, match="missing"):
        build_cache(src, (64, 64), root=root / "cache", workers=1, progress=False, on_error="raise")


def test_unknown_class_id_skipped_or_raised(kaggle):
    root, _ = kaggle
    first = _rewrite(root, ClassId="99_1")
    src = IMaterialistSource(root)
    assert first not in src.ids() and src.skipped.counts["unknown_class_id"] == 1
    with pytest.raises(DataError, match="unknown_class_id.*99_1"):
        IMaterialistSource(root, on_error="raise")


def test_image_id_escaping_the_folder_is_refused(kaggle):
    root, _ = kaggle
    Image.new("RGB", (128, 192)).save(root / "outside.jpg")
    _rewrite(root, ImageId="../outside.jpg")
    src = IMaterialistSource(root)
    with pytest.raises(DataError, match="escape"):
        src.read("../outside.jpg")
    cache = build_cache(src, (64, 64), root=root / "cache", workers=1, progress=False)
    assert cache.manifest["skipped_while_caching"]["counts"] == {"path_escape": 1}


def test_empty_after_filtering_and_missing_files(tmp_path):
    write_imaterialist_fixture(tmp_path, n=2, jumpsuit_every=1)  # every image has a jumpsuit
    with pytest.raises(DataError, match="no images left"):
        IMaterialistSource(tmp_path)
    with pytest.raises(FileNotFoundError, match="train.csv"):
        IMaterialistSource(tmp_path / "nowhere")


def test_source_files_are_never_modified(kaggle):
    root, _ = kaggle
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}
    build_cache(IMaterialistSource(root), (64, 64), root=root.parent / "cache2", workers=1, progress=False)
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()} == before

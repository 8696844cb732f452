import os
import shutil
import time

import numpy as np
import pytest
import scipy.io

from clothparse_lib import taxonomy as tx
from clothparse_lib.data import DataError
from clothparse_lib.data.ccp import CCPSource, read_groundtruth
from clothparse_lib.data.imaterialist import rle_decode, rle_encode


def test_reads_ccp_and_merges_labels(ccp_root):
    src = CCPSource(ccp_root)
    ids = src.ids()
    assert len(ids) + src.skipped.total == len(list((ccp_root / "annotations" / "pixel-level").glob("*.mat")))
    assert set(src.skipped.counts) <= {"excluded_label", "suit_covers_trousers"}
    s = src.read(ids[0])
    raw = read_groundtruth(ccp_root / "annotations" / "pixel-level" / f"{ids[0]}.mat", ids[0])
    assert s.image.shape[:2] == s.mask.shape == raw.shape
    assert (s.mask == tx.CCP_LUT[raw]).all()
    # e.g. 0001: blouse -> top, shoes -> shoe, skirt -> skirt, hair/skin -> background
    names = {tx.CCP_LABELS[v] for v in np.unique(raw)}
    for name in names:
        assert (s.mask[raw == tx.CCP_LABELS.index(name)] == tx.CCP_LUT[tx.CCP_LABELS.index(name)]).all()


@pytest.mark.slow
def test_rle_round_trip_on_every_ccp_mask(ccp_root):
    """rle_decode(rle_encode(m)) == m for every garment mask of every CCP annotation."""
    files = sorted((ccp_root / "annotations" / "pixel-level").glob("*.mat"))
    assert files
    checked = 0
    for f in files:
        mask = tx.CCP_LUT[read_groundtruth(f, f.stem)]
        h, w = mask.shape
        for cls in np.unique(mask):
            m = mask == cls
            assert (rle_decode(rle_encode(m), h, w) == m).all(), (f.stem, cls)
            checked += 1
    assert checked > len(files)


@pytest.fixture
def small_ccp(ccp_root, tmp_path):
    """A writable 3-image copy of CCP for the bad-input tests (the shared copy is read-only)."""
    root = tmp_path / "ccp"
    (root / "photos").mkdir(parents=True)
    (root / "annotations" / "pixel-level").mkdir(parents=True)
    shutil.copy(ccp_root / "label_list.mat", root)
    for i in ("0001", "0002", "0003"):
        shutil.copy(ccp_root / "photos" / f"{i}.jpg", root / "photos")
        shutil.copy(ccp_root / "annotations" / "pixel-level" / f"{i}.mat", root / "annotations" / "pixel-level")
    return root


def test_label_map_out_of_range(small_ccp):
    f = small_ccp / "annotations" / "pixel-level" / "0002.mat"
    gt = scipy.io.loadmat(f)["groundtruth"]
    gt[0, 0] = 77
    scipy.io.savemat(f, {"groundtruth": gt})
    src = CCPSource(small_ccp)
    assert src.ids() == ["0001", "0003"] and src.skipped.counts == {"label_out_of_range": 1}
    with pytest.raises(DataError, match="0002: label_out_of_range.*77"):
        CCPSource(small_ccp, on_error="raise")


def test_an_unreadable_annotation_is_named_with_its_whole_reason(small_ccp):
    f = small_ccp / "annotations" / "pixel-level" / "0002.mat"
    f.write_bytes(b"not a mat file")
    src = CCPSource(small_ccp)
    assert src.ids() == ["0001", "0003"] and src.skipped.counts == {"annotation unreadable": 1}
    first = src.skipped.to_dict()["first"]["annotation unreadable"]
    assert first.startswith("0002: annotation unreadable (MatReadError: ") and first.endswith(f"): {f}")
    assert "0002: annotation unreadable (MatReadError: " in str(src.skipped)


def test_missing_photo_and_size_mismatch(small_ccp):
    (small_ccp / "photos" / "0001.jpg").unlink()
    shutil.copy(small_ccp / "photos" / "0003.jpg", small_ccp / "photos" / "0002.jpg")
    src = CCPSource(small_ccp)
    with pytest.raises(DataError, match="0001: image file missing"):
        src.read("0001")
    with pytest.raises(DataError, match="0002: size_mismatch"):  # 0003's photo is 831 rows, 0002's map 830
        src.read("0002")


def test_a_copy_with_new_file_times_keeps_its_fingerprint(small_ccp, tmp_path):
    """The same files provisioned anew (new modification times) are the same data: the cache and the resume of a
    half-done training (both keyed by the fingerprint) stay valid; a file that changed size is new data."""
    copy = tmp_path / "copy" / "ccp"
    shutil.copytree(small_ccp, copy, copy_function=shutil.copy)  # contents only: new times
    later = time.time() + 3600
    for f in copy.rglob("*"):
        os.utime(f, (later, later))
    assert CCPSource(copy).fingerprint() == CCPSource(small_ccp).fingerprint()
    photo = copy / "photos" / "0002.jpg"
    photo.write_bytes(photo.read_bytes() + b"\0")  # still a readable JPEG, of another size
    assert CCPSource(copy).fingerprint() != CCPSource(small_ccp).fingerprint()


def test_not_a_ccp_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="CLOTHPARSE_DATA_DIR"):
        CCPSource(tmp_path)

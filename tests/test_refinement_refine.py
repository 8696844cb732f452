"""The dataset refinement: the iterative crop, its bad-input rules, the refined source and its cache."""
import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from test_refinement_persons import CountingDetector  # noqa: E402 - tests/ is on sys.path (pytest's rootdir import mode)

from clothparse_lib.data import DataError, Sample, build_cache
from clothparse_lib.data.ccp import CCPSource
from clothparse_lib.data.synthetic import SyntheticSource
from clothparse_lib.refinement.persons import Detections, make_detector
from clothparse_lib.refinement.refine import (
    PAPER_MARGINS,
    RefinedSource,
    apply_review,
    crop_box,
    garment_extent,
    read_index,
    refine,
    summary,
    write_index,
    write_review_list,
)
from clothparse_lib.results import refinement


def test_crop_box_adds_the_margin_clips_and_widens():
    assert crop_box((100, 200), 0.3, 500, 10) == (70, 230, False)
    assert crop_box((100, 200), 0.0, 500, 10) == (100, 200, False)
    assert crop_box((10, 110), 0.3, 120, 10) == (0, 120, False)  # clipped to the image
    assert crop_box((100, 104), 0.1, 500, 50) == (77, 127, True)  # too narrow: widened around the centre
    assert crop_box((0, 4), 0.0, 500, 50) == (0, 50, True)  # ... and kept inside the image
    assert crop_box((0, 4), 0.0, 30, 50) == (0, 30, True)  # never wider than the image
    mask = np.zeros((5, 9), np.uint8)
    assert garment_extent(mask) is None
    mask[2, 3:6] = 4
    assert garment_extent(mask) == (3, 6)


class Scripted:
    """A detector answering from the image: persons = the value of pixel (0, 0)'s red channel, or
    ``in_crop`` when the image is narrower than ``full_width`` (a crop). Counts its calls."""

    name = "scripted"

    def __init__(self, full_width, in_crop=1):
        self.full_width, self.in_crop, self.calls = full_width, in_crop, 0

    def detect(self, image):
        self.calls += 1
        n = int(image[0, 0, 0]) if image.shape[1] == self.full_width else self.in_crop
        if isinstance(self.in_crop, dict):
            n = self.in_crop.get(image.shape[1], 2) if image.shape[1] != self.full_width else n
        return Detections(np.tile([0, 0, 1, 1], (n, 1)), np.ones(n))

    def count(self, image):
        return len(self.detect(image))

    def signature(self):
        return f"scripted-{self.in_crop}"


class Toy:
    """A five-image source exercising each rule (H=40, W=100)."""

    name = "toy"
    H, W = 40, 100

    def __init__(self):
        self.images = {}
        for image_id, persons, cols in [("one", 1, (40, 60)), ("nobody", 0, (40, 60)), ("two", 2, (30, 70)),
                                        ("bare", 2, None), ("narrow", 2, (50, 52))]:
            image = np.full((self.H, self.W, 3), 100, np.uint8)
            image[0, 0, 0] = persons
            mask = np.zeros((self.H, self.W), np.uint8)
            if cols:
                mask[5:35, cols[0]:cols[1]] = 3
            image[:, :, 1] = np.arange(self.W)  # column index, to check crops
            self.images[image_id] = (image, mask)

    def ids(self):
        return list(self.images) + ["broken"]

    def read(self, image_id):
        if image_id == "broken":
            raise DataError(image_id, "image file unreadable (OSError): broken.jpg")
        image, mask = self.images[image_id]
        return Sample(image_id, image.copy(), mask.copy(), {"persons": int(image[0, 0, 0])})

    def fingerprint(self):
        return "toy-1"


def test_every_rule_on_a_toy_source(tmp_path):
    src = Toy()
    index = refine(src, Scripted(Toy.W), min_width=0.5, progress=False).set_index("image_id")
    rows = index.to_dict("index")
    assert rows["one"]["status"] == "kept" and rows["one"]["reason"] == "one_person"
    assert rows["nobody"]["status"] == "kept" and rows["nobody"]["reason"] == "no_person_detected"
    assert (rows["one"]["x0"], rows["one"]["x1"]) == (0, 100)
    assert rows["two"]["status"] == "cropped" and rows["two"]["margin"] == 0.3
    assert (rows["two"]["x0"], rows["two"]["x1"]) == (18, 82) and rows["two"]["persons_m30"] == 1
    assert pd.isna(rows["two"]["persons_m10"])  # later steps are not run
    assert rows["bare"]["status"] == "dropped" and rows["bare"]["reason"] == "no_garment_pixels"
    assert rows["broken"]["status"] == "dropped" and rows["broken"]["reason"].startswith("unreadable: image file")
    assert rows["narrow"]["status"] == "cropped" and rows["narrow"]["widened"]
    assert rows["narrow"]["x1"] - rows["narrow"]["x0"] == 20  # 0.5 x height 40
    assert index["use"].to_dict() == {"one": True, "nobody": True, "two": True, "bare": False, "narrow": True,
                                      "broken": False}
    table = summary(index.reset_index())
    assert table["images"].iloc[:-1].sum() == 6
    assert table.iloc[-1]["reason"] == "crop_widened_to_min_width" and table.iloc[-1]["images"] == 1


def test_iterative_crop_goes_to_the_next_margin_then_to_review(tmp_path):
    src = Toy()
    # "two": mask columns 30..70 (width 40): crops 18..82 (64 px), 26..74 (48), 30..70 (40)
    index = refine(src, Scripted(Toy.W, in_crop={64: 2, 48: 3, 40: 1}), progress=False).set_index("image_id")
    assert index.loc["two", "status"] == "cropped" and index.loc["two", "margin"] == 0.0
    assert [index.loc["two", f"persons_m{m}"] for m in (30, 10, 0)] == [2, 3, 1]

    for policy, used in (("drop", False), ("keep", True)):
        index = refine(src, Scripted(Toy.W, in_crop=2), review_policy=policy, progress=False)
        review = index[index["status"] == "review"]
        assert set(review["image_id"]) == {"two", "narrow"}
        assert (review["reason"] == "2_persons_after_last_crop").all() and (review["use"] == used).all()
    served = RefinedSource(src, index)  # policy "keep": review images are served uncropped until reviewed
    assert served.read("two").image.shape == (Toy.H, Toy.W, 3)

    # a crop where nobody is found is not accepted by default (the paper asks for exactly one)
    assert refine(src, Scripted(Toy.W, in_crop=0), progress=False).set_index("image_id").loc["two", "status"] == "review"
    lenient = refine(src, Scripted(Toy.W, in_crop=0), crop_accepts_zero=True, progress=False).set_index("image_id")
    assert lenient.loc["two", "status"] == "cropped" and lenient.loc["two", "reason"] == "no_person_in_crop"

    with pytest.raises(ValueError, match="review_policy"):
        refine(src, Scripted(Toy.W), review_policy="maybe")


def test_review_list_and_decisions(tmp_path):
    src = Toy()
    index = refine(src, Scripted(Toy.W, in_crop=3), progress=False)
    review = write_review_list(index, tmp_path / "review.csv")
    assert list(review["image_id"]) == ["two", "narrow"] and (review["decision"] == "").all()
    on_disk = pd.read_csv(tmp_path / "review.csv", dtype={"image_id": str}, keep_default_na=False)
    on_disk.loc[on_disk["image_id"] == "two", "decision"] = "keep"
    decided = apply_review(index, on_disk).set_index("image_id")
    assert decided.loc["two", "use"] and decided.loc["two", "reason"] == "reviewed: keep"
    assert not decided.loc["narrow", "use"] and decided.loc["narrow", "status"] == "review"
    with pytest.raises(ValueError, match="keep, drop or empty"):
        apply_review(index, on_disk.assign(decision="perhaps"))
    run = SimpleNamespace(refined_index=lambda: index, source=lambda: src)  # what the chapter's gallery reads
    fig = refinement.review_gallery(run)
    assert len([ax for ax in fig.axes if ax.images]) == 2
    assert "persons 2/3/3/3" in [ax.get_title() for ax in fig.axes if ax.images][0]
    with pytest.raises(ValueError, match="status must be one of"):
        refinement.review_gallery(run, status="lost")


def test_refinement_finds_every_two_person_synthetic_image(tmp_path):
    src = SyntheticSource(n=40, height=288, width=192)
    truth = {i: src.read(i).info["persons"] for i in src.ids()}
    assert sum(n == 2 for n in truth.values()) >= 5
    index = refine(src, make_detector("skin"), cache_file=tmp_path / "cache.jsonl", progress=False)
    by_id = index.set_index("image_id")
    two = [i for i, n in truth.items() if n == 2]
    assert (by_id.loc[two, "persons_full"] >= 2).all()  # every two-person image is found...
    assert (by_id.loc[two, "status"] != "kept").all()  # ...and cropped or left for review
    assert set(index["status"]) <= {"kept", "cropped", "review"} and index["image_id"].tolist() == src.ids()
    assert (by_id.loc[two, "status"] == "cropped").mean() >= 0.7

    # resumable: a rerun on the same cache detects nothing again
    counting = CountingDetector(make_detector("skin"))
    again = refine(src, counting, cache_file=tmp_path / "cache.jsonl", progress=False)
    assert counting.calls == 0
    pd.testing.assert_frame_equal(again, index)

    # write / read round trip keeps the table and its settings
    path = write_index(index, tmp_path / "refined.csv")
    back = read_index(path)
    pd.testing.assert_frame_equal(back, index, check_dtype=False)
    assert back.attrs["margins"] == list(PAPER_MARGINS) and back.attrs["review_policy"] == "drop"


def test_refined_source_crops_image_and_mask_identically_and_caches(tmp_path):
    src = SyntheticSource(n=24, height=96, width=64)
    index = refine(src, make_detector("skin"), progress=False)
    refined = RefinedSource(src, index)
    cropped = index[index["status"] == "cropped"]
    assert len(cropped) and refined.name == "synthetic-refined"
    for r in cropped.itertuples():
        base = src.read(r.image_id)
        before = (base.image.copy(), base.mask.copy())
        s = refined.read(r.image_id)
        assert s.image.shape[:2] == s.mask.shape == (96, r.x1 - r.x0)
        assert (s.image == base.image[:, r.x0:r.x1]).all() and (s.mask == base.mask[:, r.x0:r.x1]).all()
        assert np.bincount(s.mask.ravel(), minlength=9)[1:].tolist() == np.bincount(base.mask.ravel(), minlength=9)[1:].tolist()
        assert s.info["crop"] == (r.x0, r.x1)
        for g, (x0, _, x1, _) in s.info["boxes"].items():  # garment boxes moved with the crop
            assert (x0, x1) == (base.info["boxes"][g][0] - r.x0, base.info["boxes"][g][2] - r.x0)
        again = src.read(r.image_id)  # the base source is untouched
        assert (again.image == before[0]).all() and (again.mask == before[1]).all()
    assert refined.ids() == [i for i in src.ids() if i in set(index.loc[index["use"], "image_id"])]

    cache = build_cache(refined, (96, 64), root=tmp_path, workers=1, progress=False)
    assert len(cache) == len(refined.ids())
    assert cache.manifest["source"] == "synthetic-refined"

    # the fingerprint follows the index: another crop gives another cache
    changed = index.copy()
    row = changed.index[changed["status"] == "cropped"][0]
    changed.loc[row, "x0"] = changed.loc[row, "x0"] + 1
    assert RefinedSource(src, changed).fingerprint() != refined.fingerprint()
    assert RefinedSource(src, index).fingerprint() == refined.fingerprint()
    with pytest.raises(DataError, match="not in the refined"):
        refined.read("synthetic-0-99999")


def test_stale_index_is_an_error():
    src = SyntheticSource(n=4, height=96, width=64)
    index = refine(src, make_detector("skin"), progress=False)
    used = index.loc[index["use"], "image_id"].iloc[0]
    with pytest.raises(DataError, match="stale refined index"):
        RefinedSource(SyntheticSource(n=4, height=128, width=64), index).read(used)
    with pytest.raises(ValueError, match="not a refined index"):
        RefinedSource(src, index.drop(columns=["x0"]))


def test_refinement_on_a_few_ccp_photos(ccp_root, tmp_path):
    src = CCPSource(ccp_root, limit=6)
    index = refine(src, make_detector("hog"), progress=False)
    assert len(index) == 6 and set(index["status"]) <= {"kept", "cropped", "review"}
    refined = RefinedSource(src, index)
    for r in index[index["status"] == "cropped"].itertuples():
        s, base = refined.read(r.image_id), src.read(r.image_id)
        assert (s.mask == base.mask[:, r.x0:r.x1]).all() and (s.mask > 0).sum() == (base.mask > 0).sum()
    assert json.loads(index["boxes_full"].iloc[0]) is not None

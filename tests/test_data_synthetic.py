import numpy as np

from clothparse_lib import taxonomy as tx
from clothparse_lib.data.synthetic import SyntheticSource, make_sample


def test_deterministic_and_independent_of_order():
    a, b = make_sample(7, seed=1), make_sample(7, seed=1)
    assert (a.image == b.image).all() and (a.mask == b.mask).all() and a.info == b.info
    assert not (make_sample(7, seed=2).image == a.image).all()
    src = SyntheticSource(n=10, seed=1)
    assert (src.read(src.ids()[7]).mask == a.mask).all()


def test_all_garments_and_two_person_images_appear():
    samples = [make_sample(i, 0, 96, 64) for i in range(60)]
    seen = set().union(*(s.info["garments"] for s in samples))
    assert seen == set(tx.GARMENTS)
    persons = [s.info["persons"] for s in samples]
    assert 1 in persons and 2 in persons
    for s in samples:  # the bystander is not annotated by default
        assert s.info["annotated_persons"] == 1


def test_masks_are_exact_and_boxes_match_the_mask():
    for i in range(20):
        s = make_sample(i, 0, 192, 128)
        present = {tx.GARMENTS[k] for k, p in enumerate(tx.presence(s.mask)) if p}
        assert present == set(s.info["boxes"]) <= set(s.info["garments"])
        for g, (x0, y0, x1, y1) in s.info["boxes"].items():
            ys, xs = np.nonzero(s.mask == tx.CLASS_INDEX[g])
            assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (x0, y0, x1, y1)
        # every garment pixel has one colour-noise texture: the mask is a partition of the picture
        assert s.mask.dtype == np.uint8 and s.mask.max() < tx.N_CLASSES


def test_bystanders_can_be_annotated():
    two = next(i for i in range(50) if make_sample(i, 0, 96, 64).info["persons"] == 2)
    plain, annotated = make_sample(two, 0, 96, 64), make_sample(two, 0, 96, 64, annotate_bystanders=True)
    assert annotated.info["annotated_persons"] == 2
    assert (annotated.mask > 0).sum() > (plain.mask > 0).sum()
    assert (annotated.image == plain.image).all()


def test_fingerprint_tracks_parameters():
    assert SyntheticSource(n=10).fingerprint() == SyntheticSource(n=10).fingerprint()
    assert SyntheticSource(n=10).fingerprint() != SyntheticSource(n=11).fingerprint()

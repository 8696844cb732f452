import numpy as np
import pytest

from clothparse_lib import paper
from clothparse_lib import taxonomy as tx


def test_nine_classes_in_paper_order_with_distinct_colours():
    assert tx.CLASSES == ("background", "top", "overtop", "pants", "shorts", "skirt", "dress", "shoe", "bag")
    assert len({tuple(c) for c in tx.PALETTE}) == tx.N_CLASSES
    assert sorted(tx.PAINT_ORDER) == sorted(tx.GARMENTS)


def test_imaterialist_map_is_the_papers():
    mapping = paper.numbers()["category_mapping_imaterialist_2019"]
    expected = {k: v for k, v in mapping.items() if k in tx.GARMENTS}
    assert set(expected) == set(tx.GARMENTS)
    got = {g: sorted(c for c, m in tx.IMATERIALIST_MAP.items() if m == g) for g in tx.GARMENTS}
    assert got == {g: sorted(v) for g, v in expected.items()}
    assert all(name in tx.IMATERIALIST_CATEGORIES for name in tx.IMATERIALIST_MAP)
    assert tx.IMATERIALIST_EXCLUDE == {"jumpsuit"}
    parts = tx.IMATERIALIST_CATEGORIES[tx.IMATERIALIST_FIRST_PART_ID:]
    assert len(tx.IMATERIALIST_CATEGORIES) == 46 and "sleeve" in parts
    assert not set(parts) & set(tx.IMATERIALIST_MAP), "garment parts must never be painted"


def test_ccp_map_judgement_calls():
    lut = dict(zip(tx.CCP_LABELS, (tx.CLASSES[i] for i in tx.CCP_LUT)))
    assert len(tx.CCP_LABELS) == 59 and lut["null"] == "background"
    for label, cls in {"sweater": "overtop", "jumper": "overtop", "blazer": "overtop", "hoodie": "top",
                       "sweatshirt": "top", "jeans": "pants", "leggings": "pants", "sneakers": "shoe",
                       "purse": "bag", "cape": "background", "skin": "background", "suit": "overtop"}.items():
        assert lut[label] == cls, label
    assert tx.ccp_exclusion_reason({"romper", "shoes"}) == "excluded_label:romper"
    assert tx.ccp_exclusion_reason({"suit", "shoes"}) == "suit_covers_trousers"
    assert tx.ccp_exclusion_reason({"suit", "pants"}) is None
    assert tx.ccp_exclusion_reason({"dress", "shoes"}) is None


def test_presence_and_parse_classes():
    m = np.zeros((4, 4), np.uint8)
    m[0, 0], m[1, 1] = tx.CLASS_INDEX["skirt"], tx.CLASS_INDEX["bag"]
    assert [g for g, p in zip(tx.GARMENTS, tx.presence(m)) if p] == ["skirt", "bag"]
    assert tx.parse_classes("skirt, dress") == ["skirt", "dress"]
    with pytest.raises(ValueError, match="'hat'"):
        tx.parse_classes(["skirt", "hat"])

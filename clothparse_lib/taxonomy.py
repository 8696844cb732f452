"""The paper's 9 classes, their plot colours, and the maps from each source's labels to them.

Paper, section 4.1: iMaterialist's 27 main categories are merged into 8 garments
(top, overtop, pants, shorts, skirt, dress, shoe, bag); everything else is background and
images with a jumpsuit are excluded. Every other source is mapped with the same semantics.

Judgement calls (the paper names only iMaterialist's categories):

* iMaterialist 2019 / Fashionpedia: ``cape`` is not in the paper's overtop list, so it is
  background; garment *parts* (ids 27..45: hood, sleeve, pocket, ...) are never painted, so
  they can never overwrite a garment.
* CCP ``sweater``, ``jumper`` (British for sweater), ``cardigan``, ``blazer``, ``jacket``,
  ``coat``, ``vest`` -> overtop (iMaterialist's sweater/cardigan/jacket/vest/coat).
* CCP ``sweatshirt``, ``t-shirt``, ``top``, ``shirt``, ``blouse`` -> top (iMaterialist's
  "shirt, blouse" and "top, t-shirt, sweatshirt"); ``hoodie`` -> top (a hooded sweatshirt);
  ``bodysuit`` -> top (worn and seen as a top).
* CCP ``jeans``, ``leggings`` -> pants; all footwear (boots, clogs, flats, heels, loafers,
  pumps, sandals, shoes, sneakers, wedges) -> shoe; ``bag``, ``purse``, ``wallet`` -> bag.
* CCP ``romper`` is a one-piece like iMaterialist's jumpsuit: images with it are excluded.
* CCP ``suit`` labels the suit jacket in most photos (48 of its 83 photos also carry ``pants``)
  -> overtop; where no lower-body garment is labelled at all the label also covers the
  trousers, which no class can represent: those images are excluded (``suit_covers_trousers``).
* CCP ``cape`` -> background (as iMaterialist's cape); underwear, swimwear, hosiery, socks,
  accessories, skin and hair -> background.
"""
from __future__ import annotations

import numpy as np

__all__ = ["CLASSES", "GARMENTS", "N_CLASSES", "N_GARMENTS", "CLASS_INDEX", "COLORS", "PALETTE", "PAINT_ORDER",
           "IMATERIALIST_CATEGORIES", "IMATERIALIST_FIRST_PART_ID", "IMATERIALIST_MAP", "IMATERIALIST_EXCLUDE",
           "FASHIONPEDIA_MAP", "FASHIONPEDIA_EXCLUDE", "CCP_LABELS", "CCP_MAP", "CCP_EXCLUDE", "ccp_exclusion_reason",
           "lookup_table", "CCP_LUT", "presence", "parse_classes", "known_garments", "colorize", "mapping_table"]


CLASSES: tuple[str, ...] = ("background", "top", "overtop", "pants", "shorts", "skirt", "dress", "shoe", "bag")
GARMENTS: tuple[str, ...] = CLASSES[1:]
N_CLASSES = len(CLASSES)
N_GARMENTS = len(GARMENTS)
CLASS_INDEX: dict[str, int] = {name: i for i, name in enumerate(CLASSES)}

# RGB colours for overlays and plots (background black; garments from a qualitative palette).
COLORS: dict[str, tuple[int, int, int]] = {
    "background": (0, 0, 0),
    "top": (230, 25, 75),
    "overtop": (245, 130, 48),
    "pants": (0, 130, 200),
    "shorts": (70, 240, 240),
    "skirt": (145, 30, 180),
    "dress": (240, 50, 230),
    "shoe": (255, 225, 25),
    "bag": (60, 180, 75),
}
PALETTE = np.array([COLORS[c] for c in CLASSES], dtype=np.uint8)

# Overlapping garments are painted in this order, later ones on top: lower-body and one-piece
# garments first, then the top, the overtop worn over it, shoes over trouser hems, and the bag
# carried in front of everything.
PAINT_ORDER: tuple[str, ...] = ("pants", "shorts", "skirt", "dress", "top", "overtop", "shoe", "bag")

# --- iMaterialist (Fashion) 2019 and Fashionpedia / iMaterialist 2020: same 46 category names ---
IMATERIALIST_CATEGORIES: tuple[str, ...] = (
    "shirt, blouse", "top, t-shirt, sweatshirt", "sweater", "cardigan", "jacket", "vest", "pants",
    "shorts", "skirt", "coat", "dress", "jumpsuit", "cape", "glasses", "hat",
    "headband, head covering, hair accessory", "tie", "glove", "watch", "belt", "leg warmer",
    "tights, stockings", "sock", "shoe", "bag, wallet", "scarf", "umbrella", "hood", "collar",
    "lapel", "epaulette", "sleeve", "pocket", "neckline", "buckle", "zipper", "applique", "bead",
    "bow", "flower", "fringe", "ribbon", "rivet", "ruffle", "sequin", "tassel",
)
IMATERIALIST_FIRST_PART_ID = 27  # ids 27..45 are garment parts
IMATERIALIST_MAP: dict[str, str] = {
    "shirt, blouse": "top",
    "top, t-shirt, sweatshirt": "top",
    "sweater": "overtop",
    "cardigan": "overtop",
    "jacket": "overtop",
    "vest": "overtop",
    "coat": "overtop",
    "pants": "pants",
    "shorts": "shorts",
    "skirt": "skirt",
    "dress": "dress",
    "shoe": "shoe",
    "bag, wallet": "bag",
}
IMATERIALIST_EXCLUDE: frozenset[str] = frozenset({"jumpsuit"})
FASHIONPEDIA_MAP = IMATERIALIST_MAP  # Fashionpedia keeps iMaterialist 2019's category names
FASHIONPEDIA_EXCLUDE = IMATERIALIST_EXCLUDE

# --- Clothing Co-Parsing (CCP): 59 labels, 0 = null ---
CCP_LABELS: tuple[str, ...] = (
    "null", "accessories", "bag", "belt", "blazer", "blouse", "bodysuit", "boots", "bra",
    "bracelet", "cape", "cardigan", "clogs", "coat", "dress", "earrings", "flats", "glasses",
    "gloves", "hair", "hat", "heels", "hoodie", "intimate", "jacket", "jeans", "jumper",
    "leggings", "loafers", "necklace", "panties", "pants", "pumps", "purse", "ring", "romper",
    "sandals", "scarf", "shirt", "shoes", "shorts", "skin", "skirt", "sneakers", "socks",
    "stockings", "suit", "sunglasses", "sweater", "sweatshirt", "swimwear", "t-shirt", "tie",
    "tights", "top", "vest", "wallet", "watch", "wedges",
)
CCP_MAP: dict[str, str] = {
    **dict.fromkeys(["blouse", "shirt", "t-shirt", "top", "sweatshirt", "hoodie", "bodysuit"], "top"),
    **dict.fromkeys(["sweater", "jumper", "cardigan", "blazer", "jacket", "coat", "vest", "suit"], "overtop"),
    **dict.fromkeys(["pants", "jeans", "leggings"], "pants"),
    "shorts": "shorts",
    "skirt": "skirt",
    "dress": "dress",
    **dict.fromkeys(["boots", "clogs", "flats", "heels", "loafers", "pumps", "sandals", "shoes",
                     "sneakers", "wedges"], "shoe"),
    **dict.fromkeys(["bag", "purse", "wallet"], "bag"),
}
CCP_EXCLUDE: frozenset[str] = frozenset({"romper"})
_CCP_LOWER_BODY = frozenset(name for name, cls in CCP_MAP.items() if cls in ("pants", "shorts", "skirt", "dress"))


def ccp_exclusion_reason(labels: set[str]) -> str | None:
    """Why a CCP image with these label names is excluded, or None if it is kept."""
    excluded = sorted(labels & CCP_EXCLUDE)
    if excluded:
        return f"excluded_label:{excluded[0]}"
    if "suit" in labels and not labels & _CCP_LOWER_BODY:
        return "suit_covers_trousers"
    return None


def lookup_table(source_labels: tuple[str, ...] | list[str], mapping: dict[str, str]) -> np.ndarray:
    """uint8 array mapping a source label index to our class index (unmapped -> background)."""
    return np.array([CLASS_INDEX[mapping.get(name, "background")] for name in source_labels], dtype=np.uint8)


CCP_LUT = lookup_table(CCP_LABELS, CCP_MAP)


def presence(mask: np.ndarray) -> np.ndarray:
    """Bool vector of length 8: which garments have at least one pixel in a class-index mask."""
    counts = np.bincount(mask.ravel(), minlength=N_CLASSES)
    return counts[1:N_CLASSES] > 0


def parse_classes(names: str | list[str]) -> list[str]:
    """Validate garment names (comma-separated string or list); a clear error names the unknown ones."""
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in names if n not in GARMENTS]
    if unknown:
        raise ValueError(f"unknown garment class {', '.join(map(repr, unknown))}; known: {', '.join(GARMENTS)}")
    return list(names)


def known_garments(present=(), absent=()) -> np.ndarray:
    """What is known about an image's garments as a class prior (``models.prior``): (8,) float32, NaN = unknown,
    1 = present, 0 = absent. ``present``/``absent``: garment names (list or comma-separated string)."""
    present, absent = parse_classes(present), parse_classes(absent)
    both = set(present) & set(absent)
    if both:
        raise ValueError(f"garment(s) both present and absent: {', '.join(sorted(both))}")
    prior = np.full(N_GARMENTS, np.nan, dtype=np.float32)
    prior[[GARMENTS.index(g) for g in present]] = 1.0
    prior[[GARMENTS.index(g) for g in absent]] = 0.0
    return prior


def colorize(mask: np.ndarray) -> np.ndarray:
    """RGB image (HxWx3 uint8) of a class-index mask."""
    return PALETTE[mask]


def mapping_table():
    """Which source categories become each of our classes (iMaterialist 2019 and CCP), and what is excluded."""
    import pandas as pd

    def names(mapping, cls):
        return ", ".join(n for n, c in mapping.items() if c == cls)

    rows = [{"class": c, "iMaterialist 2019": names(IMATERIALIST_MAP, c), "CCP": names(CCP_MAP, c)} for c in GARMENTS]
    rows.append({"class": "(image excluded)", "iMaterialist 2019": ", ".join(sorted(IMATERIALIST_EXCLUDE)),
                 "CCP": ", ".join(sorted(CCP_EXCLUDE)) + "; suit without trousers"})
    return pd.DataFrame(rows).set_index("class")

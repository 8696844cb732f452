"""The Try it page's parsing functions (book/try/parse.mjs, run by Node.js) against the Python path they copy: the
squash to the model's size bit for bit Pillow's, and the mask from the logits bit for bit `parse_logits`'s."""
import json
import shutil
import subprocess

import numpy as np
import pytest

from clothparse_lib import book
from clothparse_lib.data.base import fit_images
from clothparse_lib.inference.parsing import parse_logits
from clothparse_lib.taxonomy import CLASS_INDEX

PARSE = book.ROOT / "book" / "try" / "parse.mjs"
SIZES = [(96, 64), (40, 30), (200, 150), (83, 30), (50, 61), (83, 61)]  # smaller, larger, one side only, the same

SCRIPT = """
import { readFileSync, writeFileSync } from "node:fs";
import { parseLogits, resizeBilinear } from "%s";
const a = JSON.parse(readFileSync(process.argv[2]));
const image = Uint8Array.from(a.image), seg = Float32Array.from(a.seg);
const out = {};
for (const [h, w] of a.sizes) out[`${h}x${w}`] = Array.from(resizeBilinear(image, a.width, a.height, 3, w, h));
out.mask = Array.from(parseLogits(seg, 9, a.seg_size[0], a.seg_size[1], a.height, a.width, a.excluded));
writeFileSync(process.argv[3], JSON.stringify(out));
"""


def test_the_pages_squash_and_mask_are_pythons(tmp_path):
    node = shutil.which("node")
    if node is None:
        pytest.skip("no Node.js (scripts/npm_ci.sh installs npm with it)")
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (83, 61, 3), dtype=np.uint8)
    seg = rng.normal(0, 2, (9, 12, 8)).astype(np.float32)
    (tmp_path / "run.mjs").write_text(SCRIPT % PARSE.as_uri())
    (tmp_path / "in.json").write_text(json.dumps({
        "image": image.ravel().tolist(), "height": 83, "width": 61, "sizes": SIZES, "seg": seg.ravel().tolist(),
        "seg_size": [12, 8], "excluded": [CLASS_INDEX["dress"], CLASS_INDEX["top"]]}))
    subprocess.run([node, tmp_path / "run.mjs", tmp_path / "in.json", tmp_path / "out.json"], check=True)
    got = json.loads((tmp_path / "out.json").read_text())
    for h, w in SIZES:
        want = fit_images(image[None], (h, w))[0]
        assert (np.array(got[f"{h}x{w}"], np.uint8).reshape(h, w, 3) == want).all(), (h, w)
    want = parse_logits(image, seg, absent=["dress", "top"]).mask
    assert (np.array(got["mask"], np.uint8).reshape(83, 61) == want).all()

"""What the built site needs beside jupyter-book's pages for the "Try it" page (``book/try.md``): the page's code
(``book/try/*.mjs``), onnxruntime-web's files (npm, pinned in ``package.json`` + ``package-lock.json``: ``npm ci``
puts them in ``node_modules/``), the shipped model with its card (:mod:`inference.shipped`; none while none ships,
which the page then says) and an example photo (a synthetic paper doll, :func:`data.synthetic.make_sample`),
all in ``_build/html/try-it/``: :func:`build_html` calls :func:`add_try_it`.

The runtime and the page's code are ES modules (``.mjs``) outside ``_static``: jupyter-book 1.x adds every ``*.js``
under ``_static`` to every page. Browsers run module scripts over http(s) only (not ``file://``).
"""
from __future__ import annotations

import shutil
from pathlib import Path

__all__ = ["SITE_FOLDER", "ORT_FILES", "EXAMPLE", "ort_dist", "add_try_it"]

SITE_FOLDER = "try-it"
# onnxruntime-web's wasm build: its ES module, the module that loads the WebAssembly, and the WebAssembly (SIMD)
ORT_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
EXAMPLE = {"name": "example.png", "sample": 3, "height": 600, "width": 400}  # a paper doll: no photo's licence needed


def ort_dist(root: Path) -> Path:
    """onnxruntime-web's files as ``npm ci`` installs them from the lock file; a clear error when they are missing."""
    dist = Path(root) / "node_modules" / "onnxruntime-web" / "dist"
    missing = [f for f in ORT_FILES if not (dist / f).is_file()]
    if missing:
        raise RuntimeError(f"onnxruntime-web's {', '.join(missing)} missing from {dist}: run `npm ci` in {root} "
                           "(the versions of package-lock.json), which `make html` and `make test` do")
    return dist


def add_try_it(html: Path, root: Path, runtime: Path) -> Path:
    """Copy the "Try it" page's files into the built site ``html``; returns their folder. ``root``: the book's folder
    (``book/try/``), ``runtime``: the checkout whose ``node_modules/`` holds onnxruntime-web."""
    from PIL import Image

    from ..data.synthetic import make_sample
    from ..inference.shipped import NoShippedModel, shipped_model

    dist, dest = ort_dist(runtime), Path(html) / SITE_FOLDER
    if dest.exists():
        shutil.rmtree(dest)
    (dest / "ort").mkdir(parents=True)
    for name in ORT_FILES:
        shutil.copy(dist / name, dest / "ort" / name)
    for page_code in sorted((Path(root) / "book" / "try").glob("*.mjs")):
        shutil.copy(page_code, dest / page_code.name)
    try:
        model, _ = shipped_model()
        shutil.copy(model, dest / "model.onnx")
        shutil.copy(model.with_suffix(".json"), dest / "model.json")  # its card (models.export.card_path)
    except NoShippedModel:
        pass  # the page says that none ships yet
    example = make_sample(EXAMPLE["sample"], height=EXAMPLE["height"], width=EXAMPLE["width"], p_two=0)
    Image.fromarray(example.image).save(dest / EXAMPLE["name"])
    return dest

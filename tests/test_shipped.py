"""The model that ships with the package: made by `clothparse export --ship` (float16 weights, compared with the
float32 export, card and SHA-256), carried by `pip install`, run by `clothparse predict` and `Parser.default()`
without a model argument (and refused when it is not its card's), and by the book's "Try it" page in headless
Chromium, which must parse a CCP photo with the package's own model as `Parser.from_onnx` does. The other tests
ship one smoke model, into a temporary package folder, for the whole file, under a size limit that puts its largest
matrices in int8 (as the published model's)."""
import base64
import json
import shutil
import subprocess
import sys
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clothparse_lib import book
from clothparse_lib.book import site
from clothparse_lib.cli import PREDICT_OUTPUTS, main
from clothparse_lib.data.synthetic import make_sample
from clothparse_lib.evaluation import ship
from clothparse_lib.inference import shipped
from clothparse_lib.inference.parsing import Parser

ROOT = book.ROOT
ARTIFACTS = ROOT / "test-artifacts"
CCP_PHOTO = "0007"  # a CCP test photo of the browser test (read from $CLOTHPARSE_DATA_DIR, never committed)
SMOKE_LIMIT = 0.8  # the smoke model's size limit, as a share of its float16 file's


@pytest.fixture(scope="module")
def shipped_dir(tmp_path_factory):
    """A smoke run's extended model (its only training: a model of synthetic dolls, which draws garments on any
    photo) shipped (`clothparse export --ship`) into a temporary package folder, compared with its float32 export on
    three synthetic photos; the size limit is :data:`SMOKE_LIMIT` of its float16 file."""
    from clothparse_lib.models.checkpoints import read_checkpoint
    from clothparse_lib.results.run import Run

    smoke_run = Run.open("smoke", tmp_path_factory.mktemp("smoke"), progress=False, device="cpu")
    smoke_run.ensure("extended")
    weights = sum(v.numel() for v in read_checkpoint(smoke_run.model_dir("extended") / "best.pt")["model"].values())
    folder = tmp_path_factory.mktemp("shipped")
    photos = []
    for i in range(3):
        photos.append(folder.parent / f"doll-{i}.png")
        Image.fromarray(make_sample(100 + i, height=240, width=160).image).save(photos[-1])
    with pytest.MonkeyPatch.context() as m:
        m.setattr(shipped, "SHIPPED_DIR", folder)
        m.setattr(ship, "MAX_MB", SMOKE_LIMIT * 2 * weights / 2**20)
        assert main(["export", "--ship", "--checkpoint", "extended", "--run-dir", str(smoke_run.run_dir),
                     "--photos", *map(str, photos)]) == 0
    return folder


@pytest.fixture
def shipping(shipped_dir, monkeypatch):
    """The package's shipped model is the smoke one (for this test)."""
    monkeypatch.setattr(shipped, "SHIPPED_DIR", shipped_dir)
    return shipped_dir / shipped.MODEL_FILE


def _photo(tmp_path, i=0) -> Path:
    path = tmp_path / f"photo-{i}.jpg"
    Image.fromarray(make_sample(200 + i, height=210, width=150).image).save(path, quality=92)
    return path


def test_without_a_shipped_model_predict_says_how_to_make_one(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(shipped, "SHIPPED_DIR", tmp_path / "empty")
    assert main(["predict", "--out", str(tmp_path / "out"), str(_photo(tmp_path))]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "no model ships with this version yet" in err
    assert shipped.SHIP_COMMAND in err and "--checkpoint" in err and "--model" in err
    assert not (tmp_path / "out").exists()
    with pytest.raises(shipped.NoShippedModel, match="clothparse export --ship"):
        Parser.default()


def test_the_package_ships_the_published_runs_model_and_predict_uses_it(tmp_path, capsys):
    """The committed model (no monkeypatch: the package's own folder): within the size limit, as good as its float32
    export on the CCP test photos by its card, and what `clothparse predict photo.jpg` runs."""
    card = json.loads((shipped.SHIPPED_DIR / "model.json").read_text())
    assert (card["model"], card["shipped"]["dataset"]) == ("extended", "ccp") and card["size"] == [288, 192]
    assert (shipped.SHIPPED_DIR / shipped.MODEL_FILE).stat().st_size <= ship.MAX_MB * 2**20
    agreement = card["shipped"]["agreement"]
    assert agreement["photos"] == card["test"]["images"] and agreement["data"] == "CCP"
    assert all(agreement[k]["pixels"] >= 0.999 for k in ("without_prior", "with_prior"))
    assert main(["predict", "--out", str(tmp_path / "out"), str(_photo(tmp_path))]) == 0
    line = capsys.readouterr().out.splitlines()[0]
    assert line.startswith(f"model: the shipped extended ({card['profile']} profile, seed {card['seed']}"), line
    assert (tmp_path / "out" / "photo-0.png").is_file()


def test_ship_refuses_a_package_folder_it_cannot_write_before_exporting(tmp_path, monkeypatch, capsys):
    (tmp_path / "a-file").write_text("")
    monkeypatch.setattr(shipped, "SHIPPED_DIR", tmp_path / "a-file" / "shipped")
    (tmp_path / "best.pt").write_bytes(b"not read: refused before")
    from clothparse_lib.models import export

    monkeypatch.setattr(export, "export_onnx", lambda *a: pytest.fail("exported before checking the target"))
    assert main(["export", "--ship", "--checkpoint", str(tmp_path / "best.pt"), "--photos", "p.jpg"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "cannot be written" in err
    for args in (["--ship", "--out", "m.onnx"], [], ["--out", "m.onnx", "--photos", "p.jpg"]):
        assert main(["export", "--checkpoint", str(tmp_path / "best.pt"), *args]) == 2
        assert "with --ship the package's model" in capsys.readouterr().err


@pytest.mark.ccp
def test_ship_compares_on_the_ccp_test_photos_of_the_models_split(tmp_path, ccp_root):
    import pandas as pd
    import torch

    from clothparse_lib.models.checkpoints import atomic_save, make_checkpoint

    split = tmp_path / "split.csv"
    pd.DataFrame({"image_id": ["0003", "0001", "0002", "0004"], "split": ["test", "train", "test", "valid"]}).to_csv(
        split, index=False)
    for profile, source in [("cpu", "ccp"), ("smoke", "synthetic")]:
        checkpoint = tmp_path / profile / "best.pt"
        checkpoint.parent.mkdir()
        atomic_save(make_checkpoint({"profile": profile, "data": {"split": str(split)}}, {}, {"w": torch.zeros(1)}),
                    checkpoint)
        if source == "ccp":
            photos = ship.agreement_photos(checkpoint, ccp_root.parent)
            assert photos == [ccp_root / "photos" / "0002.jpg", ccp_root / "photos" / "0003.jpg"]
        else:
            with pytest.raises(ValueError, match="trained on synthetic data, not CCP: name the photos"):
                ship.agreement_photos(checkpoint, ccp_root.parent)


@pytest.mark.slow
def test_ship_writes_compact_weights_that_compute_in_float32(shipping):
    """float16 weights read through Casts, and the largest matrices int8 (a scale per output channel) read through
    DequantizeLinear, the fewest that fit the limit: float32 everywhere else."""
    import onnx
    from onnx import TensorProto

    card = json.loads(shipping.with_suffix(".json").read_text())
    data = shipping.read_bytes()
    assert card["onnx"]["file"] == shipped.MODEL_FILE and card["onnx"]["sha256"] == ship._sha256(data)
    model = onnx.load(shipping)
    inits = {i.name: i for i in model.graph.initializer}
    by_type = {}
    for init in inits.values():
        size = int(np.prod(init.dims)) * {TensorProto.INT8: 1, TensorProto.FLOAT16: 2, TensorProto.FLOAT: 4}.get(init.data_type, 8)
        by_type[init.data_type] = by_type.get(init.data_type, 0) + size
    assert by_type[TensorProto.FLOAT16] + by_type[TensorProto.INT8] > 0.99 * sum(by_type.values())  # (float32: a few small tensors)
    halves = {name for name, i in inits.items() if i.data_type == TensorProto.FLOAT16}
    casts = [n for n in model.graph.node if n.op_type == "Cast" and n.input[0] in halves]
    assert len(casts) == len(halves) and all(n.attribute[0].i == TensorProto.FLOAT for n in casts)
    int8 = card["shipped"]["int8_matrices"]
    assert int8 and len(data) <= card["shipped"]["max_mb"] * 2**20 < ship.MAX_MB * 2**20
    dequantized = {n.output[0]: n for n in model.graph.node if n.op_type == "DequantizeLinear"}
    assert set(dequantized) == set(int8)
    readers = {n.input[1]: n for n in model.graph.node if n.op_type in ("Conv", "Gemm", "MatMul") and len(n.input) > 1}
    for name in int8:  # one scale per output channel of the matrix that reads it
        q, scale = (inits[i] for i in dequantized[name].input[:2])
        axis = dequantized[name].attribute[0].i
        assert q.data_type == TensorProto.INT8 and scale.data_type == TensorProto.FLOAT and list(scale.dims) == [q.dims[axis]]
        assert axis == (1 if readers[name].op_type == "MatMul" else 0) or readers[name].op_type == "Gemm"
    smallest_int8 = min(int(np.prod(inits[f"{n}__int8"].dims)) for n in int8)
    assert all(int(np.prod(inits[n].dims)) <= smallest_int8 for n in halves if len(inits[n].dims) >= 2 and
               f"{n[:-len('__fp16')]}" in readers), "a larger matrix stayed float16"
    assert [i.name for i in model.graph.input] == ["image", "prior"] and [o.name for o in model.graph.output] == ["seg", "cls"]
    assert all(o.type.tensor_type.elem_type == TensorProto.FLOAT for o in [*model.graph.input, *model.graph.output])
    assert card["shipped"]["size_mb"] == round(len(data) / 2**20, 2) and "int8" in card["shipped"]["weights"]
    agreement = card["shipped"]["agreement"]
    assert agreement["photos"] == 3 and agreement["with_prior"]["absent"] == ["dress"]
    for key in ("without_prior", "with_prior"):
        assert agreement[key]["pixels"] >= 0.99 and agreement[key]["least_photo"] <= agreement[key]["pixels"]
    assert (card["profile"], card["seed"], card["shipped"]["dataset"]) == ("smoke", 0, "synthetic")
    print(f"shipped smoke model: {len(data) / 2**20:.1f} MiB, {len(int8)} matrices int8; agreement with float32 {agreement}")


@pytest.mark.slow
def test_predict_and_parser_default_run_the_shipped_model(shipping, tmp_path, capsys):
    photos = [_photo(tmp_path, i) for i in range(2)]
    out = tmp_path / "out"
    assert main(["predict", "--out", str(out), "--absent", "dress", *map(str, photos)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("model: the shipped extended (smoke profile, seed 0") and len(lines) == 3
    reference = Parser.from_onnx(shipping)
    for photo in photos:
        want = reference.parse(photo, absent=["dress"])
        assert (np.asarray(Image.open(out / f"{photo.stem}.png")) == want.mask).all()
        assert [g["name"] for g in json.loads((out / f"{photo.stem}.json").read_text())["garments"]] == \
            [g.name for g in want.garments]
        assert (Parser.default().parse(photo, absent=["dress"]).mask == want.mask).all()
    code = ("import sys\nfrom pathlib import Path\nfrom clothparse_lib.inference import shipped\n"
            f"shipped.SHIPPED_DIR = Path({str(shipping.parent)!r})\nfrom clothparse_lib.cli import main\n"
            f"code = main(['predict', '--out', {str(tmp_path / 'out2')!r}, {str(photos[0])!r}])\n"
            "print(code, sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'fastai', 'torchvision') "
            "or m.startswith(('clothparse_lib.models', 'clothparse_lib.training'))))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip().splitlines()[-1] == "0 []", run.stdout + run.stderr  # no training stack
    assert all((tmp_path / "out2" / p.format(photos[0].stem)).is_file() for p in PREDICT_OUTPUTS)


@pytest.mark.slow
def test_a_shipped_model_that_is_not_its_cards_is_refused(shipped_dir, tmp_path, monkeypatch, capsys):
    folder = tmp_path / "package"
    shutil.copytree(shipped_dir, folder)
    model = folder / shipped.MODEL_FILE
    data = bytearray(model.read_bytes())
    data[-100] ^= 0xFF  # one weight's bits
    model.write_bytes(bytes(data))
    monkeypatch.setattr(shipped, "SHIPPED_DIR", folder)
    assert main(["predict", "--out", str(tmp_path / "out"), str(_photo(tmp_path))]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "SHA-256 differs from the card" in err
    assert not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match="SHA-256"):
        Parser.default()


@pytest.mark.slow
def test_pip_install_carries_the_shipped_model(shipped_dir, tmp_path):
    """A wheel of the project with a model in clothparse_lib/shipped/ holds the model and its card."""
    project = tmp_path / "project"
    shutil.copytree(ROOT, project, ignore=shutil.ignore_patterns(
        ".git", ".venv", "node_modules", "runs", "_build", "test-artifacts", ".cache", "*.egg-info", "__pycache__",
        "book", "tests", "benchmarks"))
    shutil.copytree(shipped_dir, project / "clothparse_lib" / "shipped", dirs_exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path / "dist"), str(project)], check=True, capture_output=True)
    import zipfile

    (wheel,) = (tmp_path / "dist").glob("clothparse-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"clothparse_lib/shipped/model.onnx", "clothparse_lib/shipped/model.json"} <= names


# --- the "Try it" page in headless Chromium, driven through the DevTools protocol --------------------------------

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
                  "--disable-component-update", "--disable-sync", "--hide-scrollbars", "--window-size=1100,2200"]


class Browser:
    """Headless Chromium and one page of it, driven over the DevTools protocol (websocket-client: jupyter's)."""

    def __init__(self, chromium: str, profile: Path):
        import urllib.request

        import websocket

        self.process = subprocess.Popen([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                                         "--remote-debugging-port=0", "about:blank"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file, deadline = profile / "DevToolsActivePort", time.monotonic() + 60
        while not (port_file.is_file() and port_file.read_text().strip()):
            assert time.monotonic() < deadline and self.process.poll() is None, "chromium did not start"
            time.sleep(0.1)
        port = port_file.read_text().split()[0]
        targets = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list").read())
        page = next(t for t in targets if t["type"] == "page")
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=120, suppress_origin=True)
        self.n = 0

    def send(self, method: str, **params) -> dict:
        self.n += 1
        self.ws.send(json.dumps({"id": self.n, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self.n:
                assert "error" not in message, message
                return message["result"]

    def js(self, expression: str):
        result = self.send("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    def holds(self, condition: str) -> bool:
        """The page's ``condition``; False while the page is navigating (a reload: no page to ask)."""
        try:
            return bool(self.js(f"Boolean({condition})"))
        except AssertionError as e:
            if "navigated or closed" in str(e):
                return False
            raise

    def wait(self, condition: str, timeout: float = 90) -> None:
        """Until the page's ``condition`` holds (the page parses asynchronously)."""
        deadline = time.monotonic() + timeout
        while not self.holds(condition):
            assert time.monotonic() < deadline, f"the page never got to {condition}: " + \
                self.js("JSON.stringify({...clothparseTry.last, mask: undefined})")
            time.sleep(0.1)

    def choose(self, path: Path) -> None:
        """The file chosen in the page's file input, as a reader would."""
        parses = self.js("clothparseTry.parses")
        node = self.send("DOM.querySelector", nodeId=self.send("DOM.getDocument")["root"]["nodeId"], selector="#try-file")
        self.send("DOM.setFileInputFiles", nodeId=node["nodeId"], files=[str(path)])
        self.wait(f"clothparseTry.parses > {parses} && !clothparseTry.busy")

    def close(self) -> None:
        self.ws.close()
        self.process.terminate()
        self.process.wait(30)


class _Site(SimpleHTTPRequestHandler):
    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, ".mjs": "text/javascript", ".wasm": "application/wasm"}

    def log_message(self, *args):
        pass


def _build_try_page(root: Path) -> Path:
    """The book's "Try it" page rendered alone (jupyter-book, its links to other chapters left dangling) with its
    files added as `clothparse book build` adds them."""
    (root / "book").mkdir(parents=True)
    for f in ("_config.yml", "references.bib", "book/try.md"):
        shutil.copy(ROOT / f, root / f)
    shutil.copytree(ROOT / "book" / "try", root / "book" / "try")
    (root / "_toc.yml").write_text("format: jb-book\nroot: book/try\n")
    return book.build_html(root, warnings_are_errors=False, quiet=True, repository="none")


@pytest.mark.slow
@pytest.mark.ccp
def test_the_try_page_parses_a_ccp_photo_as_python_does(ccp_root, tmp_path, chromium):
    """The package's own model (the published run's), as the published site carries it."""
    model = shipped.SHIPPED_DIR / shipped.MODEL_FILE
    card = json.loads(model.with_suffix(".json").read_text())
    html = _build_try_page(tmp_path / "project")
    assert sorted(p.name for p in (html / site.SITE_FOLDER).iterdir()) == sorted(
        ["ort", "page.mjs", "parse.mjs", "model.onnx", "model.json", site.EXAMPLE["name"]])
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Site, directory=str(html)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    browser = Browser(chromium, tmp_path / "chromium")
    try:
        browser.send("Page.enable")
        browser.send("Page.navigate", url=f"http://127.0.0.1:{server.server_address[1]}/book/try.html")
        browser.wait("window.clothparseTry && clothparseTry.parses > 0 && !clothparseTry.busy")
        example = browser.js("clothparseTry.last")
        assert example["ok"] and example["name"].startswith("the example"), example
        model_line = browser.js("document.getElementById('try-model').textContent")
        assert "Model: extended" in model_line and f"{card['profile']} profile, seed {card['seed']}" in model_line, \
            model_line
        assert "float16 and int8" in model_line and f"{card['test']['images']} photos" in model_line, model_line
        photo = ccp_root / "photos" / f"{CCP_PHOTO}.jpg"
        reference = Parser.from_onnx(model)
        timings = []
        for present, absent in [((), ()), (("skirt",), ("dress", "pants"))]:
            browser.js("document.querySelectorAll('#try-prior input[value=unknown]').forEach(e => e.checked = true)")
            for garment, value in [*((g, "present") for g in present), *((g, "absent") for g in absent)]:
                browser.js(f"document.querySelector('input[name=try-prior-{garment}][value={value}]').checked = true")
            browser.choose(photo)
            got = browser.js("({...clothparseTry.last, mask: btoa(Array.from(clothparseTry.last.mask, c => "
                             "String.fromCharCode(c)).join(''))})")
            assert got["ok"] and (got["present"], sorted(got["absent"])) == (list(present), list(absent)), got["garments"]
            want = reference.parse(photo, present=present, absent=absent)
            mask = np.frombuffer(base64.b64decode(got["mask"]), np.uint8).reshape(got["height"], got["width"])
            agree = (mask == want.mask).mean()
            assert mask.shape == want.mask.shape and agree >= 0.999, (present, absent, agree)
            assert [g["name"] for g in got["garments"]] == [g.name for g in want.garments], (present, absent)
            assert not set(absent) & {g["name"] for g in got["garments"]}
            for g, w in zip(got["garments"], want.garments):
                assert abs(g["pixel_share"] - w.pixel_share) < 1e-3
                assert abs(g["presence_probability"] - w.presence_probability) < 1e-4
            timings.append((agree, got["ms"], got["model_ms"]))
            if not present:  # the page as it shows this parse
                _check_screenshot(browser, ARTIFACTS / "try-it.png", want, np.asarray(Image.open(photo).convert("RGB")))
        print(f"Try it page, CCP photo {CCP_PHOTO} (agreement, whole parse ms, session.run ms): {timings}; "
              f"session created in {browser.js('clothparseTry.session_ms'):.0f} ms")
        for path, message in [(_text_file(tmp_path), "is not an image this browser can read"),
                              (_huge_png(tmp_path), "too large to parse here")]:
            browser.choose(path)
            assert message in browser.js("document.getElementById('try-status').textContent")
            assert not browser.js("clothparseTry.last.ok")
        browser.send("Page.addScriptToEvaluateOnNewDocument", source="delete globalThis.WebAssembly")
        browser.send("Page.reload")  # (until the new page says so: the old one may still answer at first)
        status = "document.getElementById('try-status')"
        browser.wait(f"{status} && {status}.textContent.includes('has no WebAssembly')", timeout=60)
        assert "has no WebAssembly" in browser.js(f"{status}.textContent")
    finally:
        browser.close()
        server.shutdown()


def _check_screenshot(browser: Browser, shot: Path, want, photo: np.ndarray) -> None:
    """The page is not blank, and its overlay canvas shows the photo's garments tinted as Python tints them (closer to
    Python's overlay than to the untinted photo there)."""
    ARTIFACTS.mkdir(exist_ok=True)
    shot.write_bytes(base64.b64decode(browser.send("Page.captureScreenshot", format="png")["data"]))
    box = browser.js("(r => [r.x, r.y, r.width, r.height])(document.getElementById('try-overlay').getBoundingClientRect())")
    page = np.asarray(Image.open(shot).convert("RGB")).astype(np.float32)
    assert page.std() > 20, "the screenshot is blank"
    x, y, w, h = (int(round(v)) for v in box)
    shown = page[y:y + h, x:x + w]
    assert shown.shape[:2] == (h, w) and w > 100 and h > 100, box
    garments = np.asarray(Image.fromarray(want.mask).resize((w, h), Image.NEAREST)) > 0
    assert garments.mean() > 0.05, "too few garment pixels to see the overlay"
    tinted, plain = (np.asarray(Image.fromarray(im).resize((w, h), Image.BILINEAR), np.float32)
                     for im in (want.overlay(photo), photo))
    to_tinted, to_plain = np.abs(shown - tinted)[garments].mean(), np.abs(shown - plain)[garments].mean()
    assert to_tinted < 8 and to_tinted < 0.5 * to_plain, (to_tinted, to_plain)


def _text_file(tmp_path: Path) -> Path:
    path = tmp_path / "notes.jpg"
    path.write_text("not a photo\n")
    return path


def _huge_png(tmp_path: Path) -> Path:
    """A 8000x6000 PNG (48 megapixels, a small file): above the page's limit."""
    path = tmp_path / "huge.png"
    Image.new("L", (8000, 6000), 128).save(path)
    return path

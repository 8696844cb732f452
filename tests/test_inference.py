"""The torch-free inference layer: an exported model is run only beside the card that describes it (its SHA-256, its
inputs and outputs, the project's classes), a prior is checked in one place, and a model and its card are written
together or not at all. The graphs here are built with onnx's helpers (a 1x1 convolution), in milliseconds."""
import json
import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from clothparse_lib import storage
from clothparse_lib.cli import main
from clothparse_lib.inference import card as C
from clothparse_lib.inference.prior import check_prior, prior_input, refuse_prior
from clothparse_lib.inference.runtime import OnnxModel
from clothparse_lib.taxonomy import CLASSES, GARMENTS

SIZE = (32, 24)


def _graph(channels: int = len(CLASSES), size=SIZE, prior: bool = True, image_name: str = "image") -> bytes:
    """A graph as ``clothparse export`` writes one: ``image`` (B, 3, h, w) [and ``prior`` (B, 8)] -> ``seg``
    (B, channels, h, w) [and ``cls`` (B, 8)]."""
    w = numpy_helper.from_array(np.random.default_rng(0).normal(size=(channels, 3, 1, 1)).astype(np.float32), "w")
    nodes = [helper.make_node("Conv", [image_name, "w"], ["seg"])]
    inputs = [helper.make_tensor_value_info(image_name, TensorProto.FLOAT, ["batch", 3, *size])]
    outputs = [helper.make_tensor_value_info("seg", TensorProto.FLOAT, ["batch", channels, *size])]
    if prior:
        nodes.append(helper.make_node("Identity", ["prior"], ["cls"]))
        inputs.append(helper.make_tensor_value_info("prior", TensorProto.FLOAT, ["batch", len(GARMENTS)]))
        outputs.append(helper.make_tensor_value_info("cls", TensorProto.FLOAT, ["batch", len(GARMENTS)]))
    model = helper.make_model(helper.make_graph(nodes, "g", inputs, outputs, [w]),
                              opset_imports=[helper.make_opsetid("", 20)])
    model.ir_version = 10
    return model.SerializeToString()


def _card(path, graph: bytes, size=SIZE, prior: bool = True, model: str = "extended") -> dict:
    import hashlib
    return C.make_card(model=model, encoder="efficientnet-lite0", size=size, mean=(0.5,) * 3, std=(0.5,) * 3,
                       prior=prior, cls=prior, onnx_file=path, onnx_sha256=hashlib.sha256(graph).hexdigest(), opset=20,
                       provenance={"profile": "tiny", "seed": 0, "test": None})


def _export(path, graph: bytes | None = None, **card) -> dict:
    graph = graph or _graph(prior=card.get("prior", True))
    written = _card(path, graph, **card)
    C.write_model(path, graph, written)
    return written


def test_a_model_beside_its_card_runs(tmp_path):
    _export(tmp_path / "m.onnx")
    model = OnnxModel(tmp_path / "m.onnx", threads=1)
    seg, cls = model.logits(np.zeros((2, 40, 30, 3), np.uint8), np.full(8, np.nan, np.float32))
    assert seg.shape == (2, len(CLASSES), *SIZE) and cls.shape == (2, 8)


def _refused(path) -> str:
    with pytest.raises(ValueError) as e:
        OnnxModel(path, threads=1)
    message = str(e.value)
    assert "\n" not in message and str(path) in message
    return message


def test_a_model_that_is_not_the_one_its_card_describes_is_refused(tmp_path):
    path = tmp_path / "m.onnx"
    written = _export(path)
    OnnxModel(path, threads=1)

    other = _graph(channels=3)  # another model with the right input names and a 3-channel output
    path.write_bytes(other)
    assert "the graph's 'seg' is (batch, 3, 32, 24), the card's (batch, 9, 32, 24)" in _refused(path)

    path.write_bytes(_graph(size=(96, 64)))  # a card with the wrong input size
    assert "the graph's 'image' is (batch, 3, 96, 64), the card's (batch, 3, 32, 24)" in _refused(path)

    path.write_bytes(_graph(prior=False))  # the card of a model with a prior beside one without
    assert "the graph's inputs are image, the card's image, prior" in _refused(path)

    path.write_bytes(_graph(image_name="x"))  # an input named otherwise
    assert "the graph's inputs are x, prior, the card's image, prior" in _refused(path)

    graph = _graph()  # the same shapes, other weights: only the digest tells
    weights = onnx.load_from_string(graph)
    weights.graph.initializer[0].raw_data = np.ones((9, 3, 1, 1), np.float32).tobytes()
    path.write_bytes(weights.SerializeToString())
    assert "its SHA-256 differs from the card's" in _refused(path)

    card = dict(written, classes=written["classes"][:3])  # a card of other classes
    C.card_path(path).write_text(json.dumps(card))
    with pytest.raises(ValueError, match="the model's classes .* are not this library's"):
        C.read_card(path)


def test_predict_refuses_a_mismatched_model_in_one_line_and_writes_nothing(tmp_path, capsys):
    from PIL import Image
    photo = tmp_path / "photo.png"
    Image.fromarray(np.zeros((40, 30, 3), np.uint8)).save(photo)
    path = tmp_path / "m.onnx"
    _export(path)
    path.write_bytes(_graph(channels=3))
    assert main(["predict", "--backend", "onnx", "--model", str(path), "--out", str(tmp_path / "out"), str(photo)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "is not the model its card m.json describes" in err
    assert not (tmp_path / "out").exists()
    assert main(["predict", "--backend", "onnx", "--model", str(tmp_path), "--out", str(tmp_path / "out"), str(photo)]) == 2
    assert f"--model {tmp_path} is a folder: name the .onnx file" in capsys.readouterr().err
    _export(path)  # the model right again: an unreadable photo is one line naming its path once, the others written
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a photo")
    assert main(["predict", "--backend", "onnx", "--model", str(path), "--out", str(tmp_path / "out"), str(broken),
                 str(photo)]) == 1
    out, err = capsys.readouterr()
    assert err.strip() == f"clothparse predict: {broken}: image file unreadable (not an image Pillow can decode)"
    assert out.startswith(f"{photo}\t") and (tmp_path / "out" / "photo.png").is_file()


def test_a_model_and_its_card_are_written_together_or_not_at_all(tmp_path, monkeypatch):
    path = tmp_path / "m.onnx"
    old = _export(path)
    before = {p: p.read_bytes() for p in (path, C.card_path(path))}
    write_all, calls = storage._write_all, []

    def card_fails(fd, data):  # the second file (the card) cannot be written
        calls.append(fd)
        if len(calls) == 2:
            raise KeyboardInterrupt
        write_all(fd, data)

    monkeypatch.setattr(storage, "_write_all", card_fails)
    with pytest.raises(KeyboardInterrupt):
        C.write_model(path, _graph(size=(64, 32)), _card(path, _graph(size=(64, 32)), size=(64, 32)))
    assert {p: p.read_bytes() for p in before} == before and sorted(os.listdir(tmp_path)) == ["m.json", "m.onnx"]
    assert C.read_card(path) == old
    with pytest.raises(ValueError, match="does not state the SHA-256 of its graph"):
        C.write_model(path, _graph(size=(64, 32)), old)


def test_a_target_that_cannot_be_written_is_refused_before_the_work(tmp_path):
    (tmp_path / "file").write_text("")
    readonly = tmp_path / "readonly"
    readonly.mkdir()
    readonly.chmod(0o555)
    try:
        cases = [(tmp_path / "file" / "m.onnx", "is a file, not a folder"), (tmp_path / "m.txt", "must name an .onnx"),
                 (tmp_path / "dir.onnx", "is a folder")]
        (tmp_path / "dir.onnx").mkdir()
        if os.geteuid() != 0:  # root writes anywhere
            cases.append((readonly / "m.onnx", "cannot be written (Permission denied"))
        for target, message in cases:
            with pytest.raises(ValueError, match=message.replace("(", r"\(")):
                C.check_target(target)
        C.check_target(tmp_path / "new" / "deeper" / "m.onnx")  # folders to be made: fine, and none made yet
        assert not (tmp_path / "new").exists() and not list(tmp_path.glob(".*probe*"))
    finally:
        readonly.chmod(0o755)


def test_the_prior_is_checked_and_refused_in_one_place():
    assert np.isnan(prior_input(2)).all() and prior_input(2).shape == (2, 8)
    assert (prior_input(3, np.array([1, 0, *[np.nan] * 6]))[:, :2] == [1, 0]).all()
    for bad in (np.array([1.5] + [np.nan] * 7), np.array([-0.1] + [0.0] * 7)):
        with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
            check_prior(bad)
    message = str(refuse_prior("plain_unet"))
    assert message.startswith("model 'plain_unet' cannot take a class prior") and "extended" not in message

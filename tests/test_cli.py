import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from test_refinement_persons import _write_images  # noqa: E402 - tests/ is on sys.path

from clothparse_lib.cli import main
from clothparse_lib.refinement.persons import make_detector


def test_prepare_smoke_prints_stats_and_writes_split(tmp_path, capsys):
    assert main(["prepare", "--profile", "smoke", "--quiet", "--run-dir", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "96 images of synthetic cached at 96x64" in out
    for name in ("background", "overtop", "bag", "pixel_share_%", "image_share_%"):
        assert name in out
    split = pd.read_csv(tmp_path / "run" / "split.csv")
    assert len(split) == 96 and set(split["split"]) == {"train", "valid", "test"}


def test_prepare_demo_on_ccp(ccp_root, tmp_path, capsys):
    code = main(["prepare", "--profile", "demo", "--quiet", "--data-dir", str(ccp_root.parent),
                 "--run-dir", str(tmp_path / "run"), "--size", "64x32"])
    assert code == 0
    out = capsys.readouterr().out
    assert "of ccp cached at 64x32" in out and "skipped by reader" in out


def test_clear_errors(monkeypatch, capsys, tmp_path):
    monkeypatch.delenv("CLOTHPARSE_DATA_DIR", raising=False)
    assert main(["prepare", "--profile", "demo"]) == 2
    assert "CLOTHPARSE_DATA_DIR" in capsys.readouterr().err
    assert main(["prepare", "--profile", "nope"]) == 2
    assert "unknown profile 'nope'" in capsys.readouterr().err
    assert main(["prepare", "--profile", "smoke", "--size", "100x64"]) == 2
    assert "multiples of 32" in capsys.readouterr().err
    assert main(["prepare", "--profile", "smoke", "--workers", "0"]) == 2
    assert "--workers must be an integer >= 1, got 0" in capsys.readouterr().err
    assert main(["book", "run", "--profile", "smoke", "--jobs", "0"]) == 2
    assert capsys.readouterr().err.strip() == "clothparse book run: error: --jobs must be an integer >= 1, got 0"
    data_file = tmp_path / "data"
    data_file.write_text("")
    assert main(["prepare", "--profile", "demo", "--data-dir", str(data_file)]) == 2
    err = capsys.readouterr().err
    assert f"the data folder {data_file} (--data-dir) is a file, not a folder" in err and "download" not in err


def test_console_script_is_installed():
    exe = Path(sys.executable).parent / "clothparse"
    result = subprocess.run([str(exe), "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "prepare" in result.stdout and "persons" in result.stdout


def test_persons_command_counts_and_reports_unreadable_images(tmp_path, capsys):
    good1, good2, broken, missing = _write_images(tmp_path)
    code = main(["persons", good1, broken, good2, missing, "--backend", "skin", "--cache", str(tmp_path / "c.jsonl")])
    out, err = capsys.readouterr()
    assert code == 1
    det = make_detector("skin")
    expected = [f"{p}\t{det.count(np.asarray(Image.open(p).convert('RGB')))}" for p in (good1, good2)]
    assert out.splitlines() == expected
    assert "broken.jpg: image file unreadable" in err and "missing.jpg: image file missing" in err
    assert main(["persons", good1, "--backend", "skin"]) == 0
    assert capsys.readouterr().out.strip() == expected[0]
    assert main(["persons", good1, "--backend", "hog", "--weights", "x.pth"]) == 2
    assert "maskrcnn backend only" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # the same flags as before the move: an unknown backend is refused by argparse
        main(["persons", good1, "--backend", "yolo"])


def test_refine_smoke_prints_the_statuses_and_draws_the_review_list(tmp_path, capsys):
    assert main(["refine", "--profile", "smoke", "--quiet", "--run-dir", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    review = pd.read_csv(tmp_path / "run" / "review.csv")
    assert "one_person_in_crop" in out and f"review list ({len(review)} images)" in out
    assert (tmp_path / "run" / "review.png").is_file() == bool(len(review))


def test_checkpoint_by_model_name(tmp_path, capsys):
    """--checkpoint takes a file or a model of the run folder: its own folder, else the book's refined training."""
    from clothparse_lib.evaluation.parsing import resolve_checkpoint

    models = tmp_path / "runs" / "demo" / "models"
    for name in ("extended-refined", "plain_unet", "plain_unet-refined", "plain_unet-base"):
        (models / name).mkdir(parents=True)
        (models / name / "best.pt").write_bytes(b"")
    run = models.parent
    assert resolve_checkpoint("extended", run) == models / "extended-refined" / "best.pt"
    assert resolve_checkpoint("plain_unet", run) == models / "plain_unet" / "best.pt"  # as `clothparse train` named it
    assert resolve_checkpoint("plain_unet-base", run) == models / "plain_unet-base" / "best.pt"
    assert resolve_checkpoint(models / "plain_unet-base" / "best.pt", "elsewhere") == models / "plain_unet-base" / "best.pt"
    code = main(["predict", "--checkpoint", "runs/demo/models/extended/best.pt", "--run-dir", str(run),
                 "--out", str(tmp_path / "out"), "photo.jpg"])
    err = capsys.readouterr().err
    assert code == 2 and "neither a file nor a model" in err and len(err.strip().splitlines()) == 1
    assert "models there: extended-refined, plain_unet, plain_unet-base, plain_unet-refined" in err
    assert main(["predict", "--checkpoint", "fpn", "--run-dir", str(tmp_path / "empty"), "--out", str(tmp_path / "out"),
                 "photo.jpg"]) == 2
    assert "no trained model there" in capsys.readouterr().err


def test_predict_backends_take_their_own_model_arguments(tmp_path, capsys):
    """torch runs --checkpoint, onnx runs --model (an exported file with its card): anything else is one line, exit 2
    (neither: the shipped model, tests/test_shipped.py)."""
    import json

    from clothparse_lib.taxonomy import CLASSES

    out = ["--out", str(tmp_path / "out"), "photo.jpg"]
    for args in (["--model", "m.onnx"], ["--backend", "onnx"], ["--backend", "onnx", "--model", "m.onnx",
                 "--checkpoint", "extended"], ["--backend", "onnx", "--model", "m.onnx", "--device", "cuda"]):
        assert main(["predict", *args, *out]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "--model" in err and "--checkpoint" in err, err
    onnx_file = tmp_path / "m.onnx"
    for setup, message in [(lambda: None, "ONNX model not found"),
                           (lambda: onnx_file.write_bytes(b"not onnx"), "has no card beside it (m.json)"),
                           (lambda: (tmp_path / "m.json").write_text(json.dumps(
                               {"format": 1, "model": "extended", "classes": [{"name": c} for c in CLASSES],
                                "input": {"size": [64, 64], "mean": [0, 0, 0], "std": [1, 1, 1]}, "prior": None,
                                "outputs": {"seg": ["batch", 9, 64, 64]}, "onnx": {"sha256": "0"}})),
                            "is not a model onnxruntime can run")]:
        setup()
        assert main(["predict", "--backend", "onnx", "--model", str(onnx_file), *out]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out").exists()


HEAVY = ("torch", "fastai", "segmentation_models_pytorch", "onnxruntime")


def _in_a_fresh_process(calls: list[list[str]], env: dict | None = None) -> tuple[list[tuple[int, str]], list[str]]:
    """Each command's exit code and stderr, run by ``main`` in one fresh Python, and the heavy packages it imported."""
    code = ("import contextlib, io, json, sys\nfrom clothparse_lib.cli import main\nresults = []\n"
            f"for argv in {calls!r}:\n"
            "    err = io.StringIO()\n"
            "    with contextlib.redirect_stderr(err):\n"
            "        results.append((main(argv), err.getvalue()))\n"
            f"print(json.dumps([results, sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r})]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    results, heavy = __import__("json").loads(out.stdout.strip().splitlines()[-1])
    return [tuple(r) for r in results], heavy


def test_bad_training_settings_are_refused_before_any_heavy_import(tmp_path):
    """Each bad number, device, encoder, weights file, precision or run folder: one line, exit 2, nothing created,
    and neither torch nor fastai imported (a refusal costs what ``clothparse --help`` costs)."""
    (tmp_path / "a-file").write_text("")
    train = ["train", "--profile", "smoke", "--quiet", "--run-dir", str(tmp_path / "run")]
    cases = [(["--batch-size", "0"], "batch-size must be an integer >= 1, got 0"),
             (["--epochs-unfrozen", "-1"], "epochs-unfrozen must be an integer >= 0, got -1"),
             (["--epochs-frozen", "0", "--epochs-unfrozen", "0"], "a training needs at least one epoch"),
             (["--lr-frozen", "nan"], "lr-frozen must be a finite number > 0, got nan"),
             (["--lr-unfrozen", "inf"], "lr-unfrozen must be a finite number > 0, got inf"),
             (["--lr-unfrozen=-1e-3"], "lr-unfrozen must be a finite number > 0"),
             (["--precision", "fp16", "--device", "cpu"], "precision fp16 is for CUDA: on a CPU use bf16"),
             (["--device", "gpu0"], "--device 'gpu0' is not a device"),
             (["--encoder", "resnet50"], "unknown encoder 'resnet50'"),
             (["--weights", str(tmp_path / "missing.pth")], "missing.pth: no such file")]
    results, heavy = _in_a_fresh_process([train + flags for flags, _ in cases] + [
        ["train", "--profile", "smoke", "--run-dir", str(tmp_path / "a-file" / "run")]])
    for (code, err), (flags, message) in zip(results, cases + [([], "is a file, not a folder")]):
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, (flags, err)
        assert err.startswith("clothparse train: error: ")
    assert heavy == [] and sorted(os.listdir(tmp_path)) == ["a-file"]


def test_a_busy_model_folder_is_refused_before_the_imports(tmp_path):
    from clothparse_lib.locks import folder_lock

    with folder_lock(tmp_path / "models" / "extended"):
        results, heavy = _in_a_fresh_process([["train", "--profile", "smoke", "--run-dir", str(tmp_path)]])
    (code, err), = results
    assert code == 2 and "models/extended is in use by process" in err and len(err.strip().splitlines()) == 1
    assert heavy == []


def test_export_and_predict_refuse_bad_targets_before_torch(tmp_path):
    (tmp_path / "a-file").write_text("")
    results, heavy = _in_a_fresh_process([
        ["export", "--checkpoint", "/nonexistent.pt", "--out", str(tmp_path / "m.onnx"), "--run-dir", str(tmp_path)],
        ["export", "--checkpoint", "extended", "--out", str(tmp_path / "a-file" / "m.onnx")],
        ["predict", "--checkpoint", str(tmp_path / "m.onnx"), "--out", str(tmp_path / "out"), "photo.jpg"]])
    messages = ["'/nonexistent.pt' is neither a file nor a model", "a-file is a file, not a folder",
                "is an exported model: run it with --backend onnx --model"]
    for (code, err), message in zip(results, messages):
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert heavy == [] and sorted(os.listdir(tmp_path)) == ["a-file"]


def test_book_run_takes_the_run_folder_as_every_command_does(tmp_path, monkeypatch, capsys):
    from clothparse_lib.book import runner

    seen = {}
    monkeypatch.setattr(runner, "run_book", lambda profile, **kwargs: seen.update(kwargs, profile=profile) or [])
    assert main(["book", "run", "--profile", "smoke", "--run-dir", str(tmp_path / "mine")]) == 0
    assert seen["run_dir"] == tmp_path / "mine" and seen["profile"].name == "smoke"


@pytest.mark.parametrize("signum, code, word", [(signal.SIGINT, 130, "interrupted (SIGINT)"),
                                                (signal.SIGTERM, 143, "terminated (SIGTERM)")])
def test_an_interrupted_command_exits_in_one_line(signum, code, word, monkeypatch, capsys):
    """The signal is raised in the command's own (main) thread, whose Python handler runs before ``raise_signal``
    returns: no wait for the kernel to pick a thread and schedule it, whatever the load. SIGINT has Python's
    default handler, as in a fresh ``clothparse`` process (an earlier test of this process may have left another)."""
    from clothparse_lib.cli import data

    def killed(args):  # the command is signalled while it works
        signal.raise_signal(signum)
        raise AssertionError("not interrupted")

    monkeypatch.setattr(data, "download", killed)
    sigint = signal.signal(signal.SIGINT, signal.default_int_handler)
    before = signal.getsignal(signal.SIGTERM)
    try:
        assert main(["download", "ccp"]) == code
    finally:
        signal.signal(signal.SIGINT, sigint)
    err = capsys.readouterr().err
    assert err.strip() == f"clothparse download: {word}"
    assert signal.getsignal(signal.SIGTERM) is before  # restored

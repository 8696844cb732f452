"""A training that stops (a full disk, a kill between a checkpoint and its manifest, a second training in its
folder) leaves a folder that resumes, and says what happened in one line (training.resume)."""
import errno
import json
import os
import shutil
import threading
from dataclasses import replace

import pandas as pd
import pytest
import torch
from test_locks import hold, release  # noqa: E402 - tests/ is on sys.path

from clothparse_lib import profiles, storage
from clothparse_lib.cli import main
from clothparse_lib.models.checkpoints import read_checkpoint
from clothparse_lib.training import resume

TRAIN = ["train", "--profile", "tiny", "--quiet", "--device", "cpu", "--model", "plain_unet", "--epochs-unfrozen", "0"]


@pytest.fixture
def tiny(monkeypatch):
    """The smoke profile shrunk to seconds per training (24 synthetic images at 32x32, random encoder, one thread),
    as profile ``tiny``."""
    smoke = profiles.get_profile("smoke")
    monkeypatch.setitem(profiles.PROFILES, "tiny", replace(
        smoke, name="tiny", size=(32, 32), source_params={"n": 24, "seed": 0, "height": 64, "width": 64},
        train=replace(smoke.train, weights=None)))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_training_on_a_full_disk_stops_in_one_line_and_keeps_the_last_checkpoint(tiny, tmp_path, monkeypatch, capsys):
    """The second epoch's checkpoint meets a full disk (simulated, as in the writer): the first one's files stay."""
    folder, write_all, writes, kept = tmp_path / "models" / "plain_unet", storage._write_all, [], {}

    def disk_fills_up(fd, data):
        if ".last.pt.tmp" in os.readlink(f"/proc/self/fd/{fd}"):
            writes.append(fd)
            if len(writes) == 2:
                kept.update({f: (folder / f).read_bytes() for f in ("last.pt", "best.pt", "manifest.json")})
                write_all(fd, memoryview(data)[: len(data) // 2])
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        write_all(fd, data)

    monkeypatch.setattr(storage, "_write_all", disk_fills_up)
    assert main([*TRAIN, "--epochs-frozen", "2", "--run-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and f"error: no space left on the device of {folder}: writing last.pt" in err, err
    assert {f: (folder / f).read_bytes() for f in kept} == kept
    assert sorted(os.listdir(folder)) == [".lock", "best.pt", "history.csv", "last.pt", "manifest.json"]
    monkeypatch.setattr(storage, "_write_all", write_all)
    assert main([*TRAIN, "--epochs-frozen", "2", "--run-dir", str(tmp_path)]) == 0  # space again: it resumes
    assert "resuming plain_unet from phase 1, epoch 1" in capsys.readouterr().out
    assert len(pd.read_csv(folder / "history.csv")) == 2
    assert main([*TRAIN, "--epochs-frozen", "2", "--run-dir", str(tmp_path)]) == 0  # finished: said so, not resumed
    assert f"plain_unet: already trained in {folder}" in capsys.readouterr().out


def test_a_checkpoint_of_other_settings_is_not_resumed_and_says_why(tiny, tmp_path, capsys):
    folder = tmp_path / "models" / "plain_unet"
    assert main([*TRAIN, "--epochs-frozen", "1", "--run-dir", str(tmp_path)]) == 0
    capsys.readouterr()
    assert main([*TRAIN, "--epochs-frozen", "2", "--run-dir", str(tmp_path)]) == 0
    assert f"plain_unet: not resuming {folder / 'last.pt'}, written with another settings: training it afresh" \
        in capsys.readouterr().out
    assert len(pd.read_csv(folder / "history.csv")) == 2  # the new schedule's epochs only


class Killed(BaseException):
    """The process killed on purpose by a test."""


def test_a_kill_between_the_checkpoint_and_its_manifest_resumes(tiny, tmp_path, monkeypatch, capsys):
    folder, write_json, written = tmp_path / "models" / "plain_unet", resume.write_json, []

    def killed_on_the_second_manifest(obj, path):
        written.append(path)
        if len(written) == 2:
            raise Killed("killed after epoch 2's last.pt, before its manifest.json")
        write_json(obj, path)

    monkeypatch.setattr(resume, "write_json", killed_on_the_second_manifest)
    with pytest.raises(Killed):
        main([*TRAIN, "--epochs-frozen", "3", "--run-dir", str(tmp_path)])
    monkeypatch.setattr(resume, "write_json", write_json)
    assert read_checkpoint(folder / "last.pt")["state"]["epochs_done"] == 2  # newer than manifest.json: accepted
    assert main([*TRAIN, "--epochs-frozen", "3", "--run-dir", str(tmp_path)]) == 0
    assert "resuming plain_unet from phase 1, epoch 2" in capsys.readouterr().out
    assert list(pd.read_csv(folder / "history.csv")["epoch"]) == [1, 2, 3]
    read_checkpoint(folder / "last.pt"), read_checkpoint(folder / "best.pt")
    other = folder.parent / "other"  # a last.pt not the one manifest.json lists, and no newer: still refused
    other.mkdir()
    listed = json.loads((folder / "manifest.json").read_text())
    (other / "manifest.json").write_text(json.dumps({**listed, "checkpoints": {"last.pt": "0" * 64}}))
    shutil.copy(folder / "last.pt", other / "last.pt")
    with pytest.raises(ValueError, match="modified after training"):
        read_checkpoint(other / "last.pt")


def test_a_loss_that_becomes_nan_stops_the_training_and_keeps_the_last_good_checkpoint(tiny, tmp_path, monkeypatch,
                                                                                        capsys):
    """The loss turns NaN in the second epoch: one line, exit 2, epoch 1's checkpoints kept, the model unfinished."""
    from clothparse_lib.models.checkpoints import is_finished
    from clothparse_lib.training import losses

    folder, loss, epochs = tmp_path / "models" / "plain_unet", losses.ClothParsingLoss.__call__, []
    after_epoch = resume.Checkpointer.after_epoch

    def counted(self):
        after_epoch(self)
        epochs.append(self.epoch)

    def diverging(self, preds, masks):  # from the second epoch on, as a too-high learning rate makes it
        out = loss(self, preds, masks)
        return out * float("nan") if epochs else out

    monkeypatch.setattr(resume.Checkpointer, "after_epoch", counted)
    monkeypatch.setattr(losses.ClothParsingLoss, "__call__", diverging)
    assert main([*TRAIN, "--epochs-frozen", "3", "--run-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "the training loss became NaN or infinite in epoch 2" in err, err
    assert read_checkpoint(folder / "last.pt")["state"]["epochs_done"] == 1 and not is_finished(folder)
    best = read_checkpoint(folder / "best.pt")["model"]
    assert all(torch.isfinite(t).all() for t in best.values() if t.is_floating_point())
    assert len(pd.read_csv(folder / "history.csv")) == 1


def test_a_second_training_in_a_model_folder_stops_or_waits(tiny, tmp_path, capsys):
    p = hold(tmp_path / "models" / "plain_unet")
    try:
        assert main([*TRAIN, "--epochs-frozen", "1", "--run-dir", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert len(err.splitlines()) == 1 and f"in use by process {p.pid}" in err
        assert not (tmp_path / "models" / "plain_unet" / "history.csv").exists()
        codes = []
        waiter = threading.Thread(target=lambda: codes.append(main([*TRAIN, "--epochs-frozen", "1", "--wait",
                                                                     "--run-dir", str(tmp_path)])))
        waiter.start()
        waiter.join(3)
        assert waiter.is_alive() and not (tmp_path / "models" / "plain_unet" / "history.csv").exists()
    finally:
        release(p)
    waiter.join(600)
    assert codes == [0] and len(pd.read_csv(tmp_path / "models" / "plain_unet" / "history.csv")) == 1

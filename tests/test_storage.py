"""Writes that a full disk leaves as they were, said in one line (storage), in a folder of its own or a cache."""
import errno
import os
import pickle
import subprocess

import pytest
import torch

from clothparse_lib import storage
from clothparse_lib.cli import main
from clothparse_lib.models.checkpoints import atomic_save

MB = 2**20


@pytest.fixture
def full_disk(tmp_path, monkeypatch):
    """A folder on a 1 MB disk: a tmpfs where the test may mount one, else simulated (a file's writes past 1 MB, and
    an allocation of more, fail with ENOSPC)."""
    folder = tmp_path / "disk"
    folder.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={MB}", "tmpfs", str(folder)], capture_output=True).returncode:
        write_all, fallocate = storage._write_all, os.posix_fallocate

        def limited(fd, data):
            view = memoryview(data).cast("B")
            if not os.readlink(f"/proc/self/fd/{fd}").startswith(str(folder)):
                return write_all(fd, view)
            room = max(0, MB - os.fstat(fd).st_size)
            write_all(fd, view[:room])
            if len(view) > room:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def allocate(fd, offset, size):
            if offset + size > MB:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            fallocate(fd, offset, size)

        monkeypatch.setattr(storage, "_write_all", limited)
        monkeypatch.setattr(os, "posix_fallocate", allocate)
        yield folder
        return
    yield folder
    subprocess.run(["umount", "-l", str(folder)], check=True)


def test_writes_on_a_full_disk_change_nothing(full_disk):
    atomic_save({"x": torch.zeros(10)}, full_disk / "last.pt")
    before = (full_disk / "last.pt").read_bytes()
    with pytest.raises(storage.DiskFull) as full:
        atomic_save({"x": torch.zeros(MB)}, full_disk / "last.pt")  # 4 MB
    assert str(full.value).startswith(f"no space left on the device of {full_disk}: writing last.pt needs 4.0 MB, ")
    assert (full_disk / "last.pt").read_bytes() == before and os.listdir(full_disk) == ["last.pt"]
    full.value.args = ["fastai's wrapper replaces the args"]  # the message stays, across processes too
    assert str(pickle.loads(pickle.dumps(full.value))) == str(full.value).strip() and full.value.errno == errno.ENOSPC
    storage.append_whole(full_disk / "history.csv", "a,b\n")
    with pytest.raises(storage.DiskFull, match="writing history.csv needs 2.0 MB"):
        storage.append_whole(full_disk / "history.csv", "x" * 2 * MB)
    assert (full_disk / "history.csv").read_text() == "a,b\n"
    (full_disk / "big.npy").touch()
    with pytest.raises(storage.DiskFull, match="writing big.npy needs 3.0 MB"):
        storage.reserve(full_disk / "big.npy", 3 * MB)


def test_a_cache_build_on_a_full_disk_stops_in_one_line(full_disk, tmp_path, capsys):
    code = main(["prepare", "--profile", "smoke", "--cache-dir", str(full_disk), "--run-dir", str(tmp_path / "run"),
                 "--workers", "1", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.splitlines()) == 1, err
    assert f"error: no space left on the device of {full_disk}: writing the cache synthetic-96x64-" in err
    assert "needs 2.2 MB" in err and os.listdir(full_disk) == []


def test_a_staged_folder_replaces_the_old_one_whole_or_not_at_all(tmp_path):
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "old").write_text("old")
    with pytest.raises(RuntimeError):
        with storage.staged_folder(tmp_path / "cache") as tmp:
            (tmp / "new").write_text("half")
            raise RuntimeError("killed while filling it")
    assert sorted(os.listdir(tmp_path)) == ["cache"] and os.listdir(tmp_path / "cache") == ["old"]
    with storage.staged_folder(tmp_path / "cache") as tmp:
        (tmp / "new").write_text("new")
    assert sorted(os.listdir(tmp_path)) == ["cache"] and os.listdir(tmp_path / "cache") == ["new"]

"""Writing files so that a failure changes nothing: a target checked writable before the work (:func:`check_writable`),
whole files replaced atomically and several together or none (:func:`write_files`), rows appended whole or not at
all, and a full disk said in one line (:class:`DiskFull`: the folder, the size needed, the space left)."""
from __future__ import annotations

import errno
import hashlib
import os
import signal
import shutil
from pathlib import Path

__all__ = ["DiskFull", "disk_full", "file_sha256", "check_writable", "write_files", "write_atomic", "append_whole",
           "reserve"]


class DiskFull(OSError):
    """No space left on a device, said in one line (kept whatever wraps the exception's ``args``)."""

    def __init__(self, message: str):
        super().__init__(errno.ENOSPC, message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __reduce__(self):  # to cross process boundaries (the book's worker processes)
        return DiskFull, (self.message,)


def _mb(n: int) -> str:
    return f"{n / 2**20:.1f} MB"


def disk_full(path: str | Path, needed: int | None = None, what: str | None = None) -> DiskFull:
    """The :class:`DiskFull` of writing ``what`` (default: the name of ``path``) to ``path``'s folder, which ran out
    of space; ``needed``: the bytes it needs in all, if known."""
    path = Path(path)
    folder = next((p for p in (path.parent, *path.parent.parents) if p.is_dir()), Path("."))
    size = f" needs {_mb(needed)}" if needed is not None else ""
    return DiskFull(f"no space left on the device of {folder}: writing {what or path.name}{size}, "
                    f"{_mb(shutil.disk_usage(folder).free)} free there")


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_writable(path: str | Path, what: str = "--out", folder: bool = False) -> None:
    """Refuse, in one line, a file ``path`` (with ``folder``: a folder) that could not be written: a file is written
    and removed in its folder, or in the nearest folder above that exists (nothing is left behind), before the work
    that would write it."""
    path = Path(path)
    if path.is_dir() and not folder:
        raise ValueError(f"{what} {path} is a folder: name the file")
    nearest = next(p for p in ((path,) if folder else ()) + (*path.parents, Path(".")) if p.exists())
    if not nearest.is_dir():
        raise ValueError(f"{what} {path} cannot be written: {nearest} is a file, not a folder")
    probe = nearest / f".{path.name}.probe-{os.getpid()}"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        probe.unlink()
    except OSError as e:
        raise ValueError(f"{what} {path} cannot be written ({e.strerror or e}: {nearest})") from None


def write_files(files: dict[Path, bytes | str]) -> None:
    """Write every file of ``files`` (path -> content) or none: each is written to a temporary file beside it
    (removed on any failure), then all are renamed into place. A full disk is a :class:`DiskFull`."""
    tmps = {Path(p): Path(p).with_name(f".{Path(p).name}.tmp-{os.getpid()}") for p in files}
    data = {Path(p): d.encode() if isinstance(d, str) else d for p, d in files.items()}
    try:
        for path, tmp in tmps.items():
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                _write_all(fd, data[path])
            finally:
                os.close(fd)
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})  # the renames: all, not some
        try:
            for path, tmp in tmps.items():
                os.replace(tmp, path)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
    except BaseException as e:
        for tmp in tmps.values():
            tmp.unlink(missing_ok=True)
        if isinstance(e, OSError) and e.errno == errno.ENOSPC:
            raise disk_full(next(iter(tmps)), sum(len(d) for d in data.values()),
                            " and ".join(p.name for p in tmps)) from None
        raise


def write_atomic(path: Path, data: bytes | str) -> None:
    """Replace ``path`` by ``data`` atomically (:func:`write_files`)."""
    write_files({path: data})


def append_whole(path: Path, text: str) -> None:
    """Append ``text`` to ``path`` whole, or leave the file as it was (a full disk: :class:`DiskFull`)."""
    data = text.encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        try:
            _write_all(fd, data)
        except OSError as e:
            os.ftruncate(fd, size)
            raise disk_full(path, len(data)) if e.errno == errno.ENOSPC else e from None
    finally:
        os.close(fd)


def _write_all(fd: int, data) -> None:
    """Write all of ``data`` to ``fd`` (a write may take only part of it; a full disk raises ``ENOSPC``)."""
    view = memoryview(data).cast("B")
    while view:
        view = view[os.write(fd, view):]


def reserve(path: Path, size: int) -> None:
    """Allocate ``size`` bytes of the file ``path`` on its disk now, so that writing it through a memory map can
    never meet a full disk (which kills the process with SIGBUS); a full disk is a :class:`DiskFull`."""
    fd = os.open(path, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as e:
        raise disk_full(path, size) if e.errno == errno.ENOSPC else e from None
    finally:
        os.close(fd)

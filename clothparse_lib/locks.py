"""One process at a time in a folder: an exclusive lock on ``<folder>/.lock`` held while a run writes there.

The lock is the kernel's (``flock``): it goes with the process that holds it, so the lock of a killed process is
free at once (what its file still says is taken over). The file names the holder (pid, command, since when) for the
process that finds it taken, which stops with :class:`FolderLocked` or, asked to, waits. Held by the training of one
model (its folder) and by ``book run`` (the run folder, in the runner's process only: its worker processes and
chapter kernels lock the model folders they train in, so that different models still train at once).
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
import time
from pathlib import Path

__all__ = ["LOCK_FILE", "FolderLocked", "holder", "check_free", "folder_lock"]


LOCK_FILE = ".lock"


class FolderLocked(RuntimeError):
    """The folder's lock is held by another process (``holder``: its pid, command and since when)."""

    def __init__(self, folder: Path, holder: dict):
        super().__init__(f"{folder} is in use by {_describe(holder)}; wait for it to end (--wait) or stop it")
        self.folder, self.holder = folder, holder


def _describe(holder: dict) -> str:
    if not holder:
        return "another process"
    return f"process {holder.get('pid')} ({holder.get('command')}) since {holder.get('since')}"


def holder(folder: Path) -> dict:
    """What the lock file of ``folder`` says of its holder ({} when it says nothing readable)."""
    try:
        return json.loads((Path(folder) / LOCK_FILE).read_text() or "{}")
    except (OSError, ValueError):
        return {}


def check_free(folder: Path) -> None:
    """Raise :class:`FolderLocked` if another process holds the lock of ``folder`` now; creates nothing (a command
    learns of a busy folder before its work, and then takes the lock with :func:`folder_lock`)."""
    try:
        fd = os.open(Path(folder) / LOCK_FILE, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        raise FolderLocked(Path(folder), holder(folder)) from None
    finally:
        os.close(fd)


@contextlib.contextmanager
def folder_lock(folder: Path, wait: bool = False):
    """Hold the lock of ``folder`` (created if missing) for the ``with`` block. Taken by another process: raise
    :class:`FolderLocked`, or with ``wait`` say so on stderr and wait until it is free."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by child processes
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                raise FolderLocked(folder, holder(folder)) from None
            print(f"waiting for {folder}, in use by {_describe(holder(folder))}", file=sys.stderr, flush=True)
            fcntl.flock(fd, fcntl.LOCK_EX)
        me = {"pid": os.getpid(), "command": " ".join(sys.argv) or sys.executable,
              "since": time.strftime("%Y-%m-%d %H:%M:%S")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # releases the lock

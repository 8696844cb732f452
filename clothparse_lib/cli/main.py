"""Run a ``clothparse`` command: its errors as one line and exit 2, an interruption (SIGINT, SIGTERM) as one line
and exit 130 / 143, no traceback. An interruption is raised where the command stands, so its clean-ups run (partial
files removed: :mod:`storage`, ``models.export``)."""
from __future__ import annotations

import contextlib
import errno
import signal
import sys

from .parser import build_parser

__all__ = ["Terminated", "main"]


class Terminated(BaseException):
    """SIGTERM, raised as SIGINT raises ``KeyboardInterrupt``."""


def _terminate(signum, frame):
    raise Terminated()


@contextlib.contextmanager
def _sigterm_raises():
    """SIGTERM raises :class:`Terminated` in the main thread for the block (elsewhere: left as it is)."""
    try:
        old = signal.signal(signal.SIGTERM, _terminate)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = " ".join(filter(None, [args.command, getattr(args, "book_command", None)]))
    try:
        with _sigterm_raises():
            return args.func(args)
    except KeyboardInterrupt:
        print(f"clothparse {command}: interrupted (SIGINT); nothing partial left behind", file=sys.stderr)
        return 130
    except Terminated:
        print(f"clothparse {command}: terminated (SIGTERM); nothing partial left behind", file=sys.stderr)
        return 143
    except (ValueError, RuntimeError, FileNotFoundError) as e:  # (a folder in use: locks.FolderLocked)
        print(f"clothparse {command}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a full disk: one line (storage.DiskFull says where and how much)
        if e.errno != errno.ENOSPC:
            raise
        from ..storage import DiskFull, disk_full
        full = e if isinstance(e, DiskFull) else disk_full(e.filename or ".")
        print(f"clothparse {command}: error: {full}", file=sys.stderr)
        return 2

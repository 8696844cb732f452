"""One process at a time in a folder: the second stops naming the holder, or waits; a killed holder's lock is
taken over (locks)."""
import os
import subprocess
import sys
import threading

import pytest

from clothparse_lib.locks import FolderLocked, folder_lock, holder

HOLD = "import sys\nfrom clothparse_lib.locks import folder_lock\nwith folder_lock(sys.argv[1]):\n" \
       "    print('held', flush=True)\n    sys.stdin.read()"


def hold(folder) -> subprocess.Popen:
    """Another process holding the lock of ``folder`` until its stdin is closed."""
    p = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True)
    assert p.stdout.readline().strip() == "held"
    return p


def release(p: subprocess.Popen) -> None:
    p.stdin.close()
    assert p.wait(30) == 0


def test_a_folder_in_use_stops_naming_its_holder_or_waits(tmp_path):
    p = hold(tmp_path / "run")
    with pytest.raises(FolderLocked, match=rf"run is in use by process {p.pid} \(-c .*run\) since 20"):
        with folder_lock(tmp_path / "run"):
            pass
    with folder_lock(tmp_path / "run" / "models" / "a"), folder_lock(tmp_path / "run" / "models" / "b"):
        pass  # other folders (the book's concurrent trainings) are free
    taken = threading.Event()

    def waiting():
        with folder_lock(tmp_path / "run", wait=True):
            taken.set()

    waiter = threading.Thread(target=waiting)
    waiter.start()
    assert not taken.wait(1), "taken while another process holds it"
    release(p)
    waiter.join(30)
    assert taken.is_set()


def test_the_lock_of_a_killed_process_is_taken_over(tmp_path):
    p = hold(tmp_path)
    p.kill()
    p.wait()
    assert holder(tmp_path)["pid"] == p.pid  # its lock file still names it
    with folder_lock(tmp_path):
        assert holder(tmp_path)["pid"] == os.getpid()
    assert holder(tmp_path) == {}

"""CCP's default home and its download: served from 127.0.0.1 or a file:// URL (tests never use the internet)."""
import hashlib
import http.server
import io
import threading
import zipfile
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.io
from PIL import Image

from clothparse_lib import settings
from clothparse_lib.book import runner
from clothparse_lib.cli import main
from clothparse_lib.data import ccp, open_source
from clothparse_lib.taxonomy import CCP_LABELS


def _mat(**arrays) -> bytes:
    buf = io.BytesIO()
    scipy.io.savemat(buf, arrays)
    return buf.getvalue()


def write_ccp_zip(path):
    """A one-image CCP in the layout of GitHub's archive of the repository (with a file download() drops)."""
    top = "clothing-co-parsing-master"
    gt = np.zeros((30, 20), np.uint8)
    gt[10:25, 5:15] = CCP_LABELS.index("skirt")
    photo = io.BytesIO()
    Image.fromarray(np.full((30, 20, 3), 128, np.uint8)).save(photo, "JPEG")
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(f"{top}/label_list.mat", _mat(label_list=np.array([list(CCP_LABELS)], dtype=object)))
        z.writestr(f"{top}/photos/0001.jpg", photo.getvalue())
        z.writestr(f"{top}/annotations/pixel-level/0001.mat", _mat(groundtruth=gt))
        z.writestr(f"{top}/LICENSE", "Apache-2.0")
        z.writestr(f"{top}/show_pixel_anno.m", "% not kept")
    return path.read_bytes()


@pytest.fixture
def server(tmp_path, monkeypatch):
    """/ccp.zip: the archive; /cut.zip: announces the archive's size, sends half and hangs up; else 404. The data's
    default home is empty and $CLOTHPARSE_DATA_DIR unset."""
    archive = write_ccp_zip(tmp_path / "ccp.zip")
    hits = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            if self.path not in ("/ccp.zip", "/cut.zip"):
                return self.send_error(404)
            self.send_response(200)
            self.send_header("Content-Length", str(len(archive)))
            self.end_headers()
            self.wfile.write(archive if self.path == "/ccp.zip" else archive[: len(archive) // 2])

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_port}"
    monkeypatch.delenv(settings.DATA_DIR_VAR, raising=False)
    monkeypatch.setattr(settings, "DEFAULT_DATA_DIR", tmp_path / "home")
    monkeypatch.setattr(ccp, "REPOSITORY_ZIP", f"{url}/ccp.zip")
    monkeypatch.setattr(ccp, "REPOSITORY_SHA256", hashlib.sha256(archive).hexdigest())
    yield SimpleNamespace(url=url, archive=tmp_path / "ccp.zip", sha256=hashlib.sha256(archive).hexdigest(),
                          hits=hits, home=tmp_path / "home")
    httpd.shutdown()
    httpd.server_close()


def test_ccp_is_fetched_once_into_the_default_home(server):
    assert settings.data_dir() == server.home and not server.home.exists()
    assert open_source("ccp").ids() == ["0001"]
    assert sorted(p.name for p in (server.home / "ccp").iterdir()) == ["LICENSE", "annotations", "label_list.mat", "photos"]
    assert [p.name for p in server.home.iterdir()] == ["ccp"]  # no temporary leftovers
    open_source("ccp")
    assert server.hits == ["/ccp.zip"]


def test_checksum_mismatch_keeps_nothing(server, tmp_path):
    dest = tmp_path / "data"
    with pytest.raises(ccp.DownloadFailed, match="SHA-256 .* differs from the expected 000"):
        ccp.download(dest, server.archive.as_uri(), sha256="0" * 64, progress=False)
    assert list(dest.iterdir()) == []
    assert ccp.download(dest, server.archive.as_uri(), sha256=server.sha256, progress=False) == dest / "ccp"


def test_interrupted_download_keeps_nothing(server, tmp_path):
    dest = tmp_path / "data"
    with pytest.raises(ccp.DownloadFailed, match="interrupted after .* of .* bytes"):
        ccp.download(dest, f"{server.url}/cut.zip", progress=False)
    cut = tmp_path / "cut.zip"  # a truncated archive that arrives whole, without a checksum
    cut.write_bytes(server.archive.read_bytes()[:-100])
    with pytest.raises(ccp.DownloadFailed, match="unreadable archive"):
        ccp.download(dest, cut.as_uri(), progress=False)
    assert list(dest.iterdir()) == []


def test_offline_message_and_an_explicit_folder_is_never_filled(server, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(ccp, "REPOSITORY_ZIP", f"{server.url}/missing.zip")  # offline, as far as this test can tell
    with pytest.raises(FileNotFoundError) as e:
        open_source("ccp")
    message = str(e.value)
    assert message.startswith("cannot download CCP") and "\n" not in message
    assert f"in {server.home / 'ccp'} or set CLOTHPARSE_DATA_DIR" in message and not (server.home / "ccp").exists()
    assert main(["prepare", "--profile", "demo", "--quiet"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    mine = tmp_path / "mine"
    mine.mkdir()
    monkeypatch.setenv(settings.DATA_DIR_VAR, str(mine))
    with pytest.raises(FileNotFoundError, match=f"clothparse download ccp --data-dir {mine}"):
        open_source("ccp")
    assert list(mine.iterdir()) == [] and server.hits == ["/missing.zip", "/missing.zip"]


def test_cli_download_and_book_run_fetch_first(server, tmp_path, monkeypatch, capsys):
    assert main(["download", "ccp", "--data-dir", str(tmp_path / "d")]) == 0
    assert f"CCP is in {tmp_path / 'd' / 'ccp'}" in capsys.readouterr().out
    fetched = []
    monkeypatch.setattr(runner, "run_book", lambda *a, **k: fetched.append(ccp.is_complete(server.home / "ccp")) or [])
    assert main(["book", "run", "--profile", "demo"]) == 0 and fetched == [True]

"""`obskit programs install` / `list`, against a release server on 127.0.0.1.

No machine here reaches the real release pages, so a loopback HTTP server serves archives
laid out as each project's release page lays them out (the same host/path, file names,
archive layout and checksum files), and OBSKIT_RELEASES_MIRROR points obskit at it. The
programs inside are small shell scripts standing in for the real binaries (whose code
must not be committed here). The paths below are written out by hand, not taken from
obskit/releases.yaml, so a wrong pattern there fails these tests.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import shutil
import socket
import subprocess
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from obskit import loopback
from obskit.project import Project
from obskit.runtime.process import MissingBinaries, ProcessRuntime, find_programs
from obskit.spec.load import load_spec
from obskit.spec.model import Images

from conftest import obskit_cmd

ARCH, UARCH = ("arm64", "arm64") if platform.machine().lower() in ("aarch64", "arm64") else ("amd64", "x86_64")
GRAFANA_BUILD = "29761037902"


def _script(name: str) -> bytes:
    return f"#!/bin/sh\necho 'stand-in {name}'\n".encode()


def _tar(entries: dict[str, bytes], dirs: tuple[str, ...] = ()) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for d in dirs:
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            t.addfile(info)
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _sums(files: dict[str, bytes]) -> bytes:
    return "".join(f"{hashlib.sha256(d).hexdigest()}  {n}\n" for n, d in files.items()).encode()


def release_pages() -> dict[str, bytes]:
    """Every file the five release pages publish for this machine, by host/path."""
    out: dict[str, bytes] = {}
    # Loki: dist/loki-linux-<arch> zipped with `zip -j`, SHA256SUMS over dist/*.
    z = io.BytesIO()
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr(f"loki-linux-{ARCH}", _script("loki"))
    loki = {f"loki-linux-{ARCH}.zip": z.getvalue(), f"logcli-linux-{ARCH}.zip": b"other asset"}
    for n, d in {**loki, "SHA256SUMS": _sums(loki)}.items():
        out[f"github.com/grafana/loki/releases/download/v3.7.6/{n}"] = d
    # Mimir: a bare binary and a -sha-256 file holding only its hash.
    mimir = _script("mimir")
    base = "github.com/grafana/mimir/releases/download/mimir-3.2.0"
    out[f"{base}/mimir-linux-{ARCH}"] = mimir
    out[f"{base}/mimir-linux-{ARCH}-sha-256"] = (hashlib.sha256(mimir).hexdigest() + "\n").encode()
    # Grafana: grafana_<v>_<build>_linux_<arch>.tar.gz with root grafana-<v>/, a .sha256
    # beside it; the build number is in the GitHub release's asset list.
    gname = f"grafana_13.2.0_{GRAFANA_BUILD}_linux_{ARCH}.tar.gz"
    graf = _tar({"grafana-13.2.0/bin/grafana": _script("grafana"), "grafana-13.2.0/conf/defaults.ini": b"[paths]\n",
                 "grafana-13.2.0/LICENSE": b"AGPL"}, dirs=("grafana-13.2.0", "grafana-13.2.0/bin", "grafana-13.2.0/conf"))
    out[f"dl.grafana.com/grafana/release/13.2.0/{gname}"] = graf
    out[f"dl.grafana.com/grafana/release/13.2.0/{gname}.sha256"] = hashlib.sha256(graf).hexdigest().encode()
    out["api.github.com/repos/grafana/grafana/releases/tags/v13.2.0"] = json.dumps({"tag_name": "v13.2.0", "assets": [
        {"name": f"grafana_13.2.0_{GRAFANA_BUILD}_linux_{ARCH}.deb"}, {"name": gname}]}).encode()
    # The collector: goreleaser, binary at the archive's root, one checksums file.
    base = "github.com/open-telemetry/opentelemetry-collector-releases/releases/download/v0.160.0"
    col = {f"otelcol-contrib_0.160.0_linux_{ARCH}.tar.gz": _tar({"otelcol-contrib": _script("otelcol-contrib"),
                                                                  "README.md": b"readme"})}
    for n, d in {**col, "opentelemetry-collector-releases_otelcol-contrib_checksums.txt": _sums(col)}.items():
        out[f"{base}/{n}"] = d
    # versitygw: goreleaser, wrapped in a folder named like the archive, checksums.txt.
    wrap = f"versitygw_v1.8.0_Linux_{UARCH}"
    vgw = {f"{wrap}.tar.gz": _tar({f"{wrap}/versitygw": _script("versitygw"), f"{wrap}/LICENSE": b"Apache"}, dirs=(wrap,))}
    for n, d in {**vgw, "checksums.txt": _sums(vgw)}.items():
        out[f"github.com/versity/versitygw/releases/download/v1.8.0/{n}"] = d
    return out


class ReleaseServer:
    """The release pages on 127.0.0.1 (free port). ``corrupt``: paths served with other
    bytes; ``cut``: paths whose body stops halfway, the connection closed. It also answers
    proxy requests (absolute-form targets), serving the same files."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.corrupt: set[str] = set()
        self.cut: set[str] = set()
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                path = urlsplit(self.path).path.lstrip("/")
                if self.path.startswith("http://"):  # a proxy request: http://releases.invalid/HOST/PATH
                    path = "/".join(urlsplit(self.path).path.lstrip("/").split("/"))
                server.requests.append(path)
                data = server.files.get(path)
                if data is None:
                    self.send_error(404)
                    return
                if path in server.corrupt:
                    data = data[:-10] + b"corrupted!"
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if path in server.cut:
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = ReleaseServer(release_pages())
    yield s
    s.close()


@pytest.fixture
def cache(tmp_path):
    return tmp_path / "xdg-cache"


def _env(cache: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("OBSKIT") and k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")}
    env.update({"XDG_CACHE_HOME": str(cache), **extra})
    return env


def _obskit(*args: str, env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*obskit_cmd(), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


def _left_behind(cache: Path) -> list[str]:
    root = cache / "obskit" / "programs"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


NAMES = ("loki", "mimir", "grafana", "otelcol-contrib", "versitygw")
PROGRAM_PATHS = {"loki": "loki/3.7.6/loki", "mimir": "mimir/3.2.0/mimir", "grafana": "grafana/13.2.0/bin/grafana",
                 "otelcol-contrib": "otelcol-contrib/0.160.0/otelcol-contrib", "versitygw": "versitygw/1.8.0/versitygw"}


# --------------------------------------------------------------------------- install


def test_install_fetches_every_pinned_release_verifies_and_a_second_install_is_a_no_op(server, cache, tmp_path):
    env = _env(cache, OBSKIT_RELEASES_MIRROR=server.url)
    proc = _obskit("programs", "install", env=env)
    assert proc.returncode == 0, proc.stderr
    root = cache / "obskit" / "programs"
    for name in NAMES:
        program = root / PROGRAM_PATHS[name]
        out = subprocess.run([str(program)], capture_output=True, text=True, timeout=30).stdout
        assert out.strip() == f"stand-in {name}", name  # the program from the archive, executable
        marker = json.loads((program.parents[1 if name == "grafana" else 0] / ".obskit-release.json").read_text())
        assert marker["sha256"] and marker["from"].startswith("https://")  # the real release URL is recorded
    assert (root / "grafana/13.2.0/conf/defaults.ini").is_file()  # Grafana's home beside bin/
    assert "matches SHA256SUMS" in proc.stderr and "MB" in proc.stderr  # checked, with progress
    assert not [p for p in root.iterdir() if p.name.startswith(".tmp-")]
    fetched = list(server.requests)
    assert f"github.com/grafana/loki/releases/download/v3.7.6/loki-linux-{ARCH}.zip" in fetched

    again = _obskit("programs", "install", env=env)
    assert again.returncode == 0, again.stderr
    assert server.requests == fetched, "a second install asked the server again"
    assert again.stderr.count("already installed") == len(NAMES)
    assert "0 installed, 5 already there" in again.stdout

    listed = json.loads(_obskit("programs", "list", "--json", env=env).stdout)
    assert [r["name"] for r in listed] == list(NAMES)
    assert all(r["installed"] and r["from"] == r["release"] for r in listed if r["name"] != "grafana")
    graf = next(r for r in listed if r["name"] == "grafana")
    assert graf["from"] == f"https://dl.grafana.com/grafana/release/13.2.0/grafana_13.2.0_{GRAFANA_BUILD}_linux_{ARCH}.tar.gz"
    human = _obskit("programs", "list", env=env).stdout
    assert "loki             3.7.6     installed" in human and "SHA256SUMS" in human


def test_a_corrupted_archive_is_refused_and_nothing_is_installed(server, cache):
    path = f"github.com/grafana/loki/releases/download/v3.7.6/loki-linux-{ARCH}.zip"
    server.corrupt.add(path)
    proc = _obskit("programs", "install", "loki", env=_env(cache, OBSKIT_RELEASES_MIRROR=server.url))
    assert proc.returncode == 4, proc.stderr
    assert "does not match its published checksum" in proc.stderr and "nothing was installed" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert _left_behind(cache) == []


def test_an_interrupted_download_leaves_nothing_behind(server, cache):
    path = f"dl.grafana.com/grafana/release/13.2.0/grafana_13.2.0_{GRAFANA_BUILD}_linux_{ARCH}.tar.gz"
    server.files[path] = server.files[path] + os.urandom(3 << 20)  # big enough to be cut mid-body
    server.files[path + ".sha256"] = hashlib.sha256(server.files[path]).hexdigest().encode()
    server.cut.add(path)
    proc = _obskit("programs", "install", "grafana", env=_env(cache, OBSKIT_RELEASES_MIRROR=server.url))
    assert proc.returncode == 4, proc.stderr
    assert "broke off" in proc.stderr and "nothing was installed" in proc.stderr, proc.stderr
    assert _left_behind(cache) == []
    # ... and the next attempt, with the server whole again, installs.
    server.cut.clear()
    server.files[path] = release_pages()[path]
    server.files[path + ".sha256"] = release_pages()[path + ".sha256"]
    assert _obskit("programs", "install", "grafana", env=_env(cache, OBSKIT_RELEASES_MIRROR=server.url)).returncode == 0


def test_install_from_a_folder_of_files_received_by_hand(cache, tmp_path):
    received = tmp_path / "received"
    received.mkdir()
    for path, data in release_pages().items():
        if not path.startswith("api.github.com"):
            (received / path.rsplit("/", 1)[1]).write_bytes(data)
    env = _env(cache, OBSKIT_RELEASES_MIRROR="http://127.0.0.1:9")  # nothing listens: no network is used
    proc = _obskit("programs", "install", "--from", str(received), env=env)
    assert proc.returncode == 0, proc.stderr
    listed = {r["name"]: r for r in json.loads(_obskit("programs", "list", "--json", env=env).stdout)}
    assert all(r["installed"] for r in listed.values())
    assert listed["grafana"]["from"] == str(received / f"grafana_13.2.0_{GRAFANA_BUILD}_linux_{ARCH}.tar.gz")
    assert f"from     {received}" in _obskit("programs", "list", env=env).stdout

    # A file that does not match the checksum beside it is refused there too.
    other = _env(tmp_path / "other-cache")
    (received / f"mimir-linux-{ARCH}").write_bytes(b"#!/bin/sh\necho tampered\n")
    bad = _obskit("programs", "install", "mimir", "--from", str(received), env=other)
    assert bad.returncode == 4 and "does not match its published checksum" in bad.stderr, bad.stderr
    assert _left_behind(tmp_path / "other-cache") == []
    # A missing checksum file is named, not skipped.
    (received / "checksums.txt").unlink()
    missing = _obskit("programs", "install", "versitygw", "--from", str(received), env=other)
    assert missing.returncode == 4 and "holds no checksums.txt" in missing.stderr, missing.stderr


def test_downloads_go_through_the_proxy_of_the_environment(server, cache):
    """HTTP_PROXY is honoured: the mirror's host does not resolve, only the proxy can answer."""
    env = _env(cache, OBSKIT_RELEASES_MIRROR="http://releases.invalid", HTTP_PROXY=server.url)
    proc = _obskit("programs", "install", "versitygw", env=env)
    assert proc.returncode == 0, proc.stderr
    assert (cache / "obskit/programs" / PROGRAM_PATHS["versitygw"]).is_file()


def test_unknown_names_and_unreachable_servers_are_one_clear_message(cache):
    env = _env(cache, OBSKIT_RELEASES_MIRROR="http://127.0.0.1:9")
    bad = _obskit("programs", "install", "lokki", env=env)
    assert bad.returncode == 2 and "no pinned release named 'lokki'" in bad.stderr and "Traceback" not in bad.stderr
    down = _obskit("programs", "install", "loki", env=env)
    assert down.returncode == 4 and "cannot reach" in down.stderr and "--from DIR" in down.stderr, down.stderr
    assert _left_behind(cache) == []


def test_pinned_versions_are_the_images_versions():
    from obskit.programs import releases

    pinned = {n: r.version for n, r in releases().items()}
    images = Images()
    for name, key in (("loki", "loki"), ("mimir", "mimir"), ("grafana", "grafana"), ("otelcol-contrib", "otelcol")):
        assert getattr(images, key).endswith(":" + pinned[name]), name


# --------------------------------------------------------------------------- the process runtime


def _spec(*sets: str):
    return load_spec(None, environ={}, use_default_file=False,
                     sets=[f"environments.process.base_port={loopback.free_block()}", *sets])


def test_the_runtime_finds_installed_programs_after_path(server, cache, tmp_path, monkeypatch):
    env = _env(cache, OBSKIT_RELEASES_MIRROR=server.url)
    assert _obskit("programs", "install", "loki", "grafana", "versitygw", env=env).returncode == 0
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    bare = tmp_path / "bin"
    bare.mkdir()
    monkeypatch.setenv("PATH", str(bare))
    spec = _spec().spec
    penv = spec.environments["process"]
    found = find_programs(spec, "process", penv, ["loki", "grafana"])
    assert found["loki"].path == str(cache / "obskit/programs" / PROGRAM_PATHS["loki"])
    assert found["grafana"].extra["home"] == str(cache / "obskit/programs/grafana/13.2.0")
    # versitygw from the cache comes before moto (obskit's own venv has moto_server).
    store = find_programs(spec, "process", penv, ["object-store"])["object-store"]
    assert store.extra["flavour"] == "versitygw" and store.path.startswith(str(cache))
    # PATH comes first.
    (bare / "loki").write_text("#!/bin/sh\n")
    (bare / "loki").chmod(0o755)
    assert find_programs(spec, "process", penv, ["loki"])["loki"].path == str(bare / "loki")


def test_the_missing_programs_message_names_the_install_command_first(cache, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.setenv("PATH", str(tmp_path))
    spec = _spec().spec
    penv = spec.environments["process"]
    with pytest.raises(MissingBinaries) as one:
        find_programs(spec, "process", penv, ["loki"])
    text = str(one.value)
    assert text.startswith("the process runtime is missing a program:\n  `obskit programs install loki` downloads it ")
    assert "run `obskit programs install loki`" in text and "skip" not in text

    with pytest.raises(MissingBinaries) as several:
        find_programs(spec, "process", penv, ["loki", "mimir-1", "mimir-2", "grafana", "otelcol"])
    text = str(several.value)
    assert text.startswith("the process runtime is missing 4 programs:\n"
                           "  `obskit programs install loki mimir grafana otelcol-contrib` downloads them ")
    assert "or run without Grafana and Mimir: environments.process.skip: [grafana, mimir]" in text

    skipped = _spec("environments.process.skip=[grafana]").spec
    with pytest.raises(MissingBinaries) as info:
        find_programs(skipped, "process", skipped.environments["process"], ["loki", "mimir-1"])
    text = str(info.value)
    assert "or run without Mimir: environments.process.skip: [grafana, mimir]" in text
    assert "Grafana is left out here" in text


def test_skipping_grafana_does_not_start_its_postgres(tmp_path):
    root = tmp_path / "proj"
    root.mkdir()
    with_grafana = ProcessRuntime(Project.of(_spec(), root=root), "process")
    assert "postgres" in with_grafana.services and "grafana" in with_grafana.services
    without = ProcessRuntime(Project.of(_spec("environments.process.skip=[grafana]"), root=root), "process")
    assert "postgres" not in without.services and "grafana" not in without.services
    assert "loki" in without.services and "object-store" in without.services

"""The programs of the process runtime, one command away: ``obskit programs install``.

Downloads the pinned releases (Loki, Mimir, Grafana, the OpenTelemetry Collector contrib
distribution, versitygw) described in ``obskit/releases.yaml``, checks each against the
checksum file its project publishes, and unpacks it into a per-user cache, one folder per
name and version::

    ${XDG_CACHE_HOME:-~/.cache}/obskit/programs/<name>/<version>/

The process runtime looks there after PATH (:func:`installed_program`).

Nothing is half-written: a download goes to a private temporary folder inside the cache,
is verified and unpacked there, and the finished folder is renamed into place in one step.
A folder that exists is complete, so a second install is a no-op without any request.
Downloads use ``requests`` (which honours HTTPS_PROXY, HTTP_PROXY and NO_PROXY).
``OBSKIT_RELEASES_MIRROR`` points every download at a mirror laid out like the release
pages (``https://HOST/PATH`` becomes ``MIRROR/HOST/PATH``); the tests serve one on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import stat
import tarfile
import time
import zipfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Callable

from obskit.errors import ObskitError, UsageError

MIRROR_ENV = "OBSKIT_RELEASES_MIRROR"
MARKER = ".obskit-release.json"
CHUNK = 1 << 16


class ProgramError(ObskitError):
    """A download failed, or a file does not match its published checksum. Nothing was installed."""

    exit_code = 4


@dataclass(frozen=True)
class Release:
    """One pinned release of one program, resolved for this machine."""

    name: str
    version: str
    url: str  # of the asset; "{build}" still in it for Grafana until resolved
    asset: str
    archive: str  # zip | tar.gz | binary
    program: str  # path of the program inside the installed folder
    checksum_file: str
    checksum_format: str  # sums | single
    member: str | None
    strip: str | None
    build_from: str | None
    build_pattern: str | None
    license: str
    source: str

    @property
    def folder(self) -> Path:
        return cache_dir() / self.name / self.version

    @property
    def program_path(self) -> Path:
        return self.folder / self.program

    def with_build(self, build: str) -> "Release":
        def sub(text: str | None) -> str | None:
            return None if text is None else text.replace("{build}", build)

        return Release(self.name, self.version, sub(self.url), sub(self.asset), self.archive, self.program,
                       sub(self.checksum_file), self.checksum_format, self.member, self.strip, None, None,
                       self.license, self.source)

    def checksum_url(self) -> str:
        return self.url.rsplit("/", 1)[0] + "/" + self.checksum_file


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or ""
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".cache"
    return root / "obskit" / "programs"


def _arch() -> tuple[str, str]:
    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64"):
        return "amd64", "x86_64"
    if machine in ("aarch64", "arm64"):
        return "arm64", "arm64"
    raise UsageError(f"no pinned release for this machine's architecture ({machine}); amd64 and arm64 have one",
                     hint="build the programs from source and put them on PATH")


def _image_version(key: str) -> str:
    from obskit.spec.model import Images

    tag = getattr(Images(), key).rsplit(":", 1)[1]
    return tag[1:] if tag.startswith("v") else tag


def releases() -> dict[str, Release]:
    """Every pinned release, by name, for this machine (linux, amd64 or arm64)."""
    import yaml

    doc = yaml.safe_load(resources.files("obskit").joinpath("releases.yaml").read_text(encoding="utf-8"))
    arch, uarch = _arch()
    out = {}
    for name, entry in doc["programs"].items():
        version = _image_version(entry["image"]) if "image" in entry else str(entry["version"])
        values = {"version": version, "os": "linux", "arch": arch, "uarch": uarch}

        def fmt(text: str | None, **extra) -> str | None:
            if text is None:
                return None
            return text.replace("{asset}", extra.get("asset", "{asset}")).format_map(_Keep({**values, **extra}))

        asset = fmt(entry["asset"])
        pattern = entry.get("build_pattern")
        if pattern:
            pattern = pattern.format_map(_Keep({k: re.escape(v) for k, v in values.items()}))
        out[name] = Release(
            name=name, version=version, url=fmt(entry["url"], asset=asset), asset=asset, archive=entry["archive"],
            program=fmt(entry["program"]), checksum_file=fmt(entry["checksum"]["file"], asset=asset),
            checksum_format=entry["checksum"]["format"], member=fmt(entry.get("member")), strip=fmt(entry.get("strip")),
            build_from=fmt(entry.get("build_from")), build_pattern=pattern, license=entry["license"],
            source=" ".join(entry["source"].split()),
        )
    return out


class _Keep(dict):
    """format_map that leaves unknown placeholders ({build}) as they are."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


# --------------------------------------------------------------------------- lookup


def installed_program(*names: str) -> str | None:
    """The installed program of the first of ``names`` that obskit installed (pinned
    version only), or None. The process runtime calls this after PATH."""
    try:
        pinned = releases()
    except (UsageError, OSError):
        return None
    for name in names:
        rel = pinned.get(name)
        if rel is not None and _complete(rel):
            return str(rel.program_path)
    return None


def _complete(rel: Release) -> bool:
    p = rel.program_path
    return (rel.folder / MARKER).is_file() and p.is_file() and os.access(p, os.X_OK)


def status() -> list[dict]:
    """What is pinned, what is installed and where each comes from (``obskit programs list``)."""
    rows = []
    for rel in releases().values():
        marker = {}
        if _complete(rel):
            try:
                marker = json.loads((rel.folder / MARKER).read_text())
            except (OSError, ValueError):
                marker = {}
        rows.append({
            "name": rel.name,
            "version": rel.version,
            "installed": _complete(rel),
            "path": str(rel.program_path) if _complete(rel) else None,
            "from": marker.get("from"),
            "sha256": marker.get("sha256"),
            "release": rel.url.replace("{build}", "<build>"),
            "checksum_file": rel.checksum_file.replace("{build}", "<build>"),
            "license": rel.license,
            "source": rel.source,
        })
    return rows


# --------------------------------------------------------------------------- install


Progress = Callable[[str, int, int | None], None]  # (what, bytes so far, total or None)


def install(names: list[str] | None = None, *, from_dir: Path | None = None,
            progress: Progress | None = None, say: Callable[[str], None] = lambda _: None) -> list[dict]:
    """Install the named programs (default: every pinned one). Returns one row per program:
    ``{"name", "version", "path", "done": "installed" | "already installed"}``."""
    pinned = releases()
    wanted = list(dict.fromkeys(names or pinned))
    unknown = [n for n in wanted if n not in pinned]
    if unknown:
        raise UsageError(f"no pinned release named {unknown[0]!r}", hint="programs: " + ", ".join(pinned))
    if from_dir is not None and not from_dir.is_dir():
        raise UsageError(f"--from {from_dir}: not a folder")
    results = []
    for name in wanted:
        rel = pinned[name]
        if _complete(rel):
            say(f"{name} {rel.version}: already installed in {rel.folder}")
            results.append({"name": name, "version": rel.version, "path": str(rel.program_path), "done": "already installed"})
            continue
        _install_one(rel, from_dir, progress, say)
        results.append({"name": name, "version": rel.version, "path": str(rel.program_path), "done": "installed"})
    return results


def _install_one(rel: Release, from_dir: Path | None, progress: Progress | None, say: Callable[[str], None]) -> None:
    root = cache_dir()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create the program cache {root}: {exc.strerror}",
                         hint="set XDG_CACHE_HOME to a folder you may write") from None
    _sweep(root)
    work = Path(_mkdtemp(root))
    try:
        if from_dir is not None:
            rel, archive, sums = _from_folder(rel, from_dir)
            origin = str(archive)
        else:
            session = _session()
            if rel.build_from:
                rel = rel.with_build(_build_number(session, rel))
            say(f"{rel.name} {rel.version}: downloading {_mirrored(rel.url)}")
            sums = _get_text(session, _mirrored(rel.checksum_url()), rel.checksum_file)
            archive = work / (rel.asset + ".part")
            _download(session, _mirrored(rel.url), archive, rel, progress)
            origin = rel.url
        expected = _expected_sha256(sums, rel)
        got = _sha256(archive)
        if got != expected:
            raise ProgramError(
                f"{rel.asset} does not match its published checksum: {rel.checksum_file} says {expected}, "
                f"the file is {got}; nothing was installed",
                hint="download it again (a proxy or a broken transfer can corrupt it)" if from_dir is None
                else f"fetch {rel.asset} and {rel.checksum_file} again from {rel.url.rsplit('/', 1)[0]}/",
            )
        tree = work / "tree"
        tree.mkdir()
        _unpack(rel, archive, tree)
        program = tree / rel.program
        if not program.is_file():
            raise ProgramError(f"{rel.asset} holds no {rel.program}; nothing was installed")
        program.chmod(program.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        (tree / MARKER).write_text(json.dumps({
            "name": rel.name, "version": rel.version, "asset": rel.asset, "from": origin, "sha256": got,
            "checksum_file": rel.checksum_file, "installed": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }, indent=2) + "\n")
        rel.folder.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(tree, rel.folder)  # atomic: the folder appears complete or not at all
        except OSError:
            if not _complete(rel):  # another install finished first: theirs is as good
                raise
        say(f"{rel.name} {rel.version}: installed {rel.program_path} (sha256 {got[:16]}... matches {rel.checksum_file})")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _mkdtemp(root: Path) -> str:
    import tempfile

    return tempfile.mkdtemp(prefix=f".tmp-{os.getpid()}-", dir=root)


def _sweep(root: Path) -> None:
    """Remove what an install killed mid-way left (its process is gone)."""
    for tmp in root.glob(".tmp-*"):
        m = re.match(r"\.tmp-(\d+)-", tmp.name)
        if m and not Path(f"/proc/{m.group(1)}").exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _mirrored(url: str) -> str:
    mirror = os.environ.get(MIRROR_ENV, "").rstrip("/")
    if not mirror:
        return url
    return mirror + "/" + url.split("://", 1)[1]


def _session():
    import requests

    s = requests.Session()  # trust_env: HTTPS_PROXY, HTTP_PROXY, NO_PROXY, REQUESTS_CA_BUNDLE
    s.headers["User-Agent"] = "obskit-programs"
    return s


def _get(session, url: str, **kw):
    import requests

    try:
        r = session.get(url, timeout=(15, 60), **kw)
    except requests.RequestException as exc:
        raise ProgramError(f"cannot reach {url}: {_reason(exc)}",
                           hint="behind a proxy, set HTTPS_PROXY; without a network, use --from DIR with the "
                                "files downloaded elsewhere") from None
    if r.status_code != 200:
        r.close()
        raise ProgramError(f"{url} answered {r.status_code}; nothing was installed")
    return r


def _reason(exc: Exception) -> str:
    text = str(exc)
    m = re.search(r"\] ([^'\")]+)", text)  # the innermost reason of urllib3's nested message
    return (m.group(1) if m else text)[:200]


def _get_text(session, url: str, what: str) -> str:
    r = _get(session, url)
    if len(r.content) > 1 << 20:
        raise ProgramError(f"{what} from {url} is larger than 1 MiB: not a checksum file")
    return r.text


def _build_number(session, rel: Release) -> str:
    r = _get(session, _mirrored(rel.build_from), headers={"Accept": "application/vnd.github+json"})
    try:
        names = [a["name"] for a in r.json().get("assets", [])]
    except (ValueError, AttributeError, KeyError, TypeError):
        raise ProgramError(f"{rel.build_from} did not answer a release's asset list") from None
    for n in names:
        m = re.fullmatch(rel.build_pattern, n)
        if m:
            return m.group(1)
    raise ProgramError(f"the {rel.name} {rel.version} release lists no {rel.asset.replace('{build}', '<build>')}",
                       hint=f"download it by hand and use --from DIR ({rel.build_from})")


def _download(session, url: str, dest: Path, rel: Release, progress: Progress | None) -> None:
    import requests

    r = _get(session, url, stream=True)
    total = int(r.headers["Content-Length"]) if r.headers.get("Content-Length", "").isdigit() else None
    done = 0
    try:
        with open(dest, "wb") as fh:
            for chunk in r.iter_content(CHUNK):
                fh.write(chunk)
                done += len(chunk)
                if progress:
                    progress(f"{rel.name} {rel.version}", done, total)
    except (requests.RequestException, OSError) as exc:
        raise ProgramError(f"the download of {url} broke off after {done} bytes: {_reason(exc)}; nothing was installed",
                           hint="run the same command again") from None
    finally:
        r.close()
    if total is not None and done != total:
        raise ProgramError(f"the download of {url} broke off after {done} of {total} bytes; nothing was installed",
                           hint="run the same command again")


def _from_folder(rel: Release, folder: Path) -> tuple[Release, Path, str]:
    """The archive and checksum file of ``rel`` in a folder filled by hand."""
    if rel.build_from:
        pattern = re.compile(rel.build_pattern.replace(r"(?:tar\.gz|deb)", r"tar\.gz"))
        found = sorted(p.name for p in folder.iterdir() if pattern.fullmatch(p.name))
        if not found:
            raise ProgramError(f"{folder} holds no {rel.asset.replace('{build}', '<build>')}",
                               hint=f"download it and its .sha256 from {rel.url.rsplit('/', 1)[0]}/")
        rel = rel.with_build(pattern.fullmatch(found[-1]).group(1))
    archive, sums = folder / rel.asset, folder / rel.checksum_file
    for p in (archive, sums):
        if not p.is_file():
            raise ProgramError(f"{folder} holds no {p.name} (both {rel.asset} and {rel.checksum_file} are needed)",
                               hint=f"download them from {rel.url.rsplit('/', 1)[0]}/")
    return rel, archive, sums.read_text(errors="replace")


def _expected_sha256(text: str, rel: Release) -> str:
    hexes = re.compile(r"[0-9a-fA-F]{64}")
    if rel.checksum_format == "single":
        words = text.split()
        if words and hexes.fullmatch(words[0]) and (len(words) == 1 or words[1].lstrip("*").endswith(rel.asset)):
            return words[0].lower()
    else:
        for line in text.splitlines():
            words = line.split()
            if len(words) == 2 and hexes.fullmatch(words[0]) and words[1].lstrip("*").removeprefix("./") == rel.asset:
                return words[0].lower()
    raise ProgramError(f"{rel.checksum_file} has no sha256 for {rel.asset}; nothing was installed")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _unpack(rel: Release, archive: Path, tree: Path) -> None:
    try:
        if rel.archive == "binary":
            shutil.copyfile(archive, tree / rel.program)
        elif rel.archive == "zip":
            with zipfile.ZipFile(archive) as z:
                with z.open(rel.member) as src, open(tree / rel.program, "wb") as dst:
                    shutil.copyfileobj(src, dst)
        else:
            with tarfile.open(archive, "r:gz") as t:
                members = []
                for m in t.getmembers():
                    name = m.name.removeprefix("./")
                    if rel.strip:
                        if name == rel.strip:
                            continue
                        if not name.startswith(rel.strip + "/"):
                            raise ProgramError(f"{rel.asset}: {m.name} is outside {rel.strip}/; nothing was installed")
                        name = name[len(rel.strip) + 1:]
                    m.name = name
                    members.append(m)
                t.extractall(tree, members=members, filter="data")  # no absolute paths, no escapes
    except (KeyError, zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
        raise ProgramError(f"{rel.asset} could not be unpacked: {exc}; nothing was installed") from None

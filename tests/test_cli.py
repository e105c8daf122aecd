"""The CLI end to end, as a user runs it: a real `obskit` subprocess in an empty folder."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest
import yaml

from obskit import __version__
from obskit.spec.load import load_spec


def test_version(run_obskit):
    proc = run_obskit("--version", check=True)
    assert proc.stdout.strip() == f"obskit, version {__version__}"


def test_help_imports_no_heavy_library():
    # Speed is measured by benchmarks/, not asserted here; what keeps --help fast is that
    # it imports neither pydantic, jinja2, yaml, rich nor python-on-whales.
    code = (
        "import sys; from obskit.cli import cli\n"
        "try:\n    cli.main(['--help'], standalone_mode=False)\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('pydantic', 'jinja2', 'yaml', 'rich', 'python_on_whales', 'cryptography') if m in sys.modules]\n"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_render_in_empty_folder_uses_embedded_default(run_obskit, tmp_path):
    proc = run_obskit("render", check=True)
    out = tmp_path / ".obskit" / "env" / "local"
    assert "Rendered environment 'local' (compose) from embedded default spec into .obskit/env/local" in proc.stdout
    for rel in ("compose/docker-compose.yaml", "configs/loki/loki.yaml", "configs/mimir/mimir.yaml",
                "configs/otelcol/config.yaml", "configs/gateway/templates/nginx.conf.template",
                "configs/grafana/provisioning/datasources/obskit.yaml", "bindings.json", "stamp.json"):
        assert (out / rel).is_file(), rel
        assert rel in proc.stdout
    assert not (tmp_path / "obskit.yaml").exists()  # nothing written back


def test_render_json_and_second_run_changes_nothing(run_obskit):
    first = json.loads(run_obskit("render", "--json", check=True).stdout)
    second = json.loads(run_obskit("render", "--json", check=True).stdout)
    assert first["files"] == second["files"]
    assert first["changed"] and second["changed"] == []


def test_init_writes_a_commented_valid_starter(run_obskit, tmp_path):
    proc = run_obskit("init", check=True)
    path = tmp_path / "obskit.yaml"
    assert "Wrote obskit.yaml" in proc.stdout
    text = path.read_text()
    lines = text.splitlines()
    for i, line in enumerate(lines):  # every section is explained by the comment above it
        if line and line[0].isalpha():
            above = next(prev for prev in reversed(lines[:i]) if prev.strip())
            assert above.startswith("#"), f"section {line!r} has no comment"
    for section in ("images:", "tenants:", "operators:", "loki:", "mimir:", "collector:", "grafana:",
                    "gateway:", "object_store:", "environments:", "kind: compose", "#   kind: aws"):
        assert section in text, section
    resolved = load_spec(path, environ={})
    assert list(resolved.spec.environments) == ["local", "process"]
    # the commented AWS example becomes valid once uncommented
    prod = next(i for i, line in enumerate(lines) if line.startswith("  # prod:"))
    uncommented = "\n".join(
        line.replace("  # ", "  ", 1) if i >= prod and line.startswith("  # ") else line
        for i, line in enumerate(lines)
    )
    path.write_text(uncommented)
    assert load_spec(path, environ={}).spec.environments["prod"].kind == "aws"


def test_init_keeps_state_out_of_git(run_obskit, tmp_path):
    (tmp_path / ".git").mkdir()
    (tmp_path / ".gitignore").write_text("build/")
    proc = run_obskit("init", check=True)
    assert "Added .obskit/ to .gitignore" in proc.stdout
    assert (tmp_path / ".gitignore").read_text().splitlines()[-1] == ".obskit/"
    (tmp_path / "obskit.yaml").unlink()
    assert "gitignore" not in run_obskit("init", check=True).stdout  # only once


def test_init_refuses_to_overwrite(run_obskit, tmp_path):
    (tmp_path / "obskit.yaml").write_text("project: mine\n")
    proc = run_obskit("init")
    assert proc.returncode == 2
    assert "already exists; nothing was written" in proc.stderr
    assert (tmp_path / "obskit.yaml").read_text() == "project: mine\n"
    assert run_obskit("init", "--force").returncode == 0


def test_render_other_environment(run_obskit, aws_spec):
    proc = run_obskit("render", "--env", "prod", cwd=aws_spec.parent, check=True)
    out = aws_spec.parent / ".obskit" / "env" / "prod"
    assert "Rendered environment 'prod' (aws)" in proc.stdout
    assert json.loads((out / "bindings.json").read_text())["kind"] == "aws"


def test_config_show_json_names_every_origin(run_obskit, tmp_path):
    (tmp_path / "obskit.yaml").write_text("loki:\n  log_level: warn\ngrafana:\n  admin_password: env:GF_PW\n")
    proc = run_obskit(
        "config", "show", "--json", "--set", "mimir.replicas=2", "--set", "mimir.replication_factor=2",
        env={"OBSKIT__LOKI__RETENTION_PERIOD": "48h", "GF_PW": "the-actual-password-value"},
        check=True,
    )
    data = json.loads(proc.stdout)
    rows = {r["key"]: r for r in data["values"]}
    assert rows["loki.log_level"] == {"key": "loki.log_level", "value": "warn", "origin": "obskit.yaml:2"}
    assert rows["loki.retention_period"]["origin"] == "environment variable OBSKIT__LOKI__RETENTION_PERIOD"
    assert rows["mimir.replicas"]["value"] == 2 and rows["mimir.replicas"]["origin"] == "command line (--set)"
    assert rows["gateway.client_max_body_size"]["origin"] == "default"
    assert rows["grafana.admin_password"]["value"] == "<secret env:GF_PW>"
    assert "the-actual-password-value" not in proc.stdout


def test_config_show_table(run_obskit):
    proc = run_obskit("config", "show", check=True)
    assert "mimir.replicas" in proc.stdout and "default" in proc.stdout


def test_bad_input_is_one_message_exit_2_and_writes_nothing(run_obskit, tmp_path):
    (tmp_path / "obskit.yaml").write_text("tenants:\n  - name: apps\n  - name: apps\n")
    proc = run_obskit("render")
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: obskit.yaml:3: tenants[1].name: duplicate tenant 'apps'")
    assert "hint:" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / ".obskit").exists()


def test_unknown_environment_exit_2(run_obskit, tmp_path):
    proc = run_obskit("render", "--env", "staging")
    assert proc.returncode == 2
    assert "unknown environment 'staging' (declared: local, process)" in proc.stderr
    assert not (tmp_path / ".obskit").exists()


def test_invalid_yaml_names_the_line(run_obskit, tmp_path):
    (tmp_path / "obskit.yaml").write_text("project: x\nmimir:\n  replicas: [1\n")
    proc = run_obskit("render")
    assert proc.returncode == 2
    assert "obskit.yaml:4: invalid YAML" in proc.stderr or "obskit.yaml:3: invalid YAML" in proc.stderr


def test_unreadable_spec_path(run_obskit, tmp_path):
    proc = run_obskit("--spec", str(tmp_path / "missing.yaml"), "render")
    assert proc.returncode == 2
    assert "spec file not found" in proc.stderr


def test_debug_shows_the_traceback(run_obskit, tmp_path):
    (tmp_path / "obskit.yaml").write_text("nope: 1\n")
    proc = run_obskit("--debug", "render")
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_check_command_runs_the_tools(run_obskit):
    proc = run_obskit("check", "--json")
    data = json.loads(proc.stdout)  # one object, whether it passes or fails
    results = {r["name"]: r for r in data["results"]}
    assert data["ok"] is (proc.returncode == 0) and data["environment"] == "local"
    assert data["failed"] == [n for n, r in results.items() if r["status"] == "fail"]
    assert results["parse"]["status"] == "pass"
    assert results["bindings"]["status"] == "pass"
    assert proc.returncode == (1 if any(r["status"] == "fail" for r in results.values()) else 0)
    assert all(r["status"] in ("pass", "skip") for r in results.values()), results


def test_spec_from_environment_variable(run_obskit, tmp_path):
    other = tmp_path / "elsewhere.yaml"
    other.write_text("project: elsewhere\n")
    run_obskit("render", env={"OBSKIT_SPEC": str(other)}, check=True)
    compose = yaml.safe_load((tmp_path / ".obskit/env/local/compose/docker-compose.yaml").read_text())
    assert compose["name"] == "elsewhere-local"


# --------------------------------------------------------------------------- never lose a file


def _tree(path):
    """Every file under ``path`` with its bytes (None when the folder is missing)."""
    from pathlib import Path

    path = Path(path)
    if not path.is_dir():
        return None
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def _strays(parent, name="local"):
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(f".{name}."))


def test_render_out_refuses_a_folder_it_did_not_render(run_obskit, tmp_path):
    (tmp_path / "obskit.yaml").write_text("project: mine\n")
    (tmp_path / "notes.txt").write_text("mine")
    docs = tmp_path / "mydocs"
    docs.mkdir()
    (docs / "thesis.txt").write_text("years of work")
    sibling = tmp_path.parent / f"{tmp_path.name}-other-project"
    sibling.mkdir()
    (sibling / "main.py").write_text("print(1)")
    (tmp_path / "afile").write_text("x")
    for out, says in (("mydocs", "holds files that obskit did not render"),
                      (f"../{sibling.name}", "holds files that obskit did not render"),
                      (str(tmp_path), "is the current folder or holds it"),
                      (".", "is the current folder or holds it"),
                      ("..", "is the current folder or holds it"),
                      ("afile/sub", "a file is in the way")):
        proc = run_obskit("render", "--out", out)
        assert proc.returncode == 2, (out, proc.stderr)
        assert proc.stderr.startswith("error: ") and says in proc.stderr, (out, proc.stderr)
        assert "Traceback" not in proc.stderr and "unexpected" not in proc.stderr
    assert (docs / "thesis.txt").read_text() == "years of work"
    assert (sibling / "main.py").read_text() == "print(1)"
    assert (tmp_path / "obskit.yaml").read_text() == "project: mine\n" and (tmp_path / "notes.txt").exists()


def test_render_out_replaces_only_its_own_render(run_obskit, tmp_path):
    run_obskit("render", "--out", "out", check=True)
    run_obskit("render", "--out", "out", check=True)  # its own render: replaced
    empty = tmp_path / "empty"
    empty.mkdir()
    run_obskit("render", "--out", "empty", check=True)  # an empty folder: used
    (tmp_path / "out" / "configs" / "my-notes.md").write_text("mine")
    proc = run_obskit("render", "--out", "out")
    assert proc.returncode == 2 and "configs/my-notes.md" in proc.stderr
    assert (tmp_path / "out" / "configs" / "my-notes.md").read_text() == "mine"


def _whole_render_of(tree, digest) -> bool:
    """``tree`` is one complete render of the spec with this digest: its stamp lists exactly
    its files with their hashes. (Compared by stamp, not to an in-process render: other work
    may change the templates between two renders.)"""
    import hashlib

    if tree is None or "stamp.json" not in tree:
        return False
    stamp = json.loads(tree["stamp.json"])
    files = {rel: hashlib.sha256(data).hexdigest() for rel, data in tree.items() if rel != "stamp.json"}
    return stamp["spec_sha256"] == digest and stamp["files"] == files


def _two_renders(tmp_path):
    """A project with a render on disk, and a spec change that makes the next one differ."""
    from obskit.project import Project
    from obskit.render import render, write_environment

    spec = tmp_path / "obskit.yaml"
    spec.write_text("loki:\n  log_level: info\n")
    first = load_spec(spec, environ={})
    dest = Project.of(first).env_dir("local")
    write_environment(render(first, "local"), dest)
    spec.write_text("loki:\n  log_level: warn\n")
    second = render(load_spec(spec, environ={}), "local")
    return dest, _tree(dest), second


def test_a_failed_swap_is_rolled_back(tmp_path, monkeypatch):
    import errno
    import os

    import pytest

    render_mod = importlib.import_module("obskit.render")
    from obskit.errors import OutputError

    dest, before, files = _two_renders(tmp_path)
    real_replace = os.replace
    for failing in ({1}, {2}):  # moving the old render aside, then moving the new one in (EXDEV)
        calls = []

        def replace(src, dst, _failing=failing, _calls=calls):
            _calls.append((src, dst))
            if len(_calls) in _failing:
                raise OSError(errno.EXDEV, "Invalid cross-device link")
            return real_replace(src, dst)

        monkeypatch.setattr(render_mod.os, "replace", replace)
        with pytest.raises(OutputError) as info:
            render_mod.write_environment(files, dest)
        monkeypatch.setattr(render_mod.os, "replace", real_replace)
        assert info.value.exit_code == 2 and str(dest) in str(info.value)
        assert "different file systems" in str(info.value) and "previous render is unchanged" in str(info.value)
        assert _tree(dest) == before, failing
        assert _strays(dest.parent) == [], failing


def test_an_unrollable_swap_is_restored_by_the_next_run(tmp_path, monkeypatch):
    import errno
    import os

    import pytest

    render_mod = importlib.import_module("obskit.render")
    from obskit.errors import OutputError
    from obskit.project import Project

    dest, before, files = _two_renders(tmp_path)
    real_replace = os.replace

    def replace(src, dst):  # the old render moves aside; the new one and the rollback both fail
        if str(src).endswith("/local"):
            return real_replace(src, dst)
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(render_mod.os, "replace", replace)
    with pytest.raises(OutputError):
        render_mod.write_environment(files, dest)
    monkeypatch.setattr(render_mod.os, "replace", real_replace)
    assert not dest.exists() and [s for s in _strays(dest.parent) if ".old-" in s]
    # Any command that reads the environment puts the previous render back.
    assert Project.of(load_spec(tmp_path / "obskit.yaml", environ={})).env_dir("local") == dest
    assert _tree(dest) == before and _strays(dest.parent) == []


def test_disk_full_and_read_only_are_one_sentence(tmp_path, monkeypatch):
    import errno
    from pathlib import Path

    import pytest

    render_mod = importlib.import_module("obskit.render")
    from obskit.errors import OutputError

    dest, before, files = _two_renders(tmp_path)
    for code, says in ((errno.ENOSPC, "the disk is full"), (errno.EFBIG, "larger than the file system allows"),
                       (errno.EROFS, "read-only")):
        def write_bytes(self, data, _code=code):
            raise OSError(_code, os.strerror(_code))

        import os

        monkeypatch.setattr(Path, "write_bytes", write_bytes)
        with pytest.raises(OutputError) as info:
            render_mod.write_environment(files, dest)
        monkeypatch.undo()
        assert says in str(info.value) and str(dest) in str(info.value)
        assert _tree(dest) == before and _strays(dest.parent) == []


@pytest.mark.parametrize("step", ["writing", "written", "moved-old", "swapped"])
def test_sigkill_at_each_step_loses_nothing(tmp_path, step):
    """A real `obskit render` killed with SIGKILL at each step of its swap (it stops itself
    at the step through the OBSKIT_TEST_PAUSE_AT test hook): the previous render is in place,
    or put back by the next command; the next render leaves no stray folders."""
    import os
    import signal

    from obskit.project import Project

    from conftest import obskit_cmd

    dest, before, files = _two_renders(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OBSKIT")} | {"OBSKIT_TEST_PAUSE_AT": step}
    proc = subprocess.Popen([*obskit_cmd(), "render"], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        assert line.strip() == f"obskit-test-paused-at {step}", line + proc.stderr.read()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
    after_kill = _tree(dest)
    digest = json.loads(files["stamp.json"])["spec_sha256"]
    if step == "swapped":
        assert _whole_render_of(after_kill, digest)
    elif step == "moved-old":
        assert after_kill is None  # between the two renames: the old render sits aside
    else:
        assert after_kill == before
    resolved = load_spec(tmp_path / "obskit.yaml", environ={})
    Project.of(resolved).env_dir("local")  # a reading command restores a render set aside
    assert _tree(dest) == before or _whole_render_of(_tree(dest), digest)
    run = subprocess.run([*obskit_cmd(), "render"], cwd=tmp_path, env={k: v for k, v in env.items()
                         if k != "OBSKIT_TEST_PAUSE_AT"}, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert _whole_render_of(_tree(dest), digest)
    assert _strays(dest.parent) == []

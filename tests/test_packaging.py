"""The wheel carries the templates: an installed obskit renders outside the checkout."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    pytest.importorskip("build", reason="the 'build' package is not installed")
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(REPO)],
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0 and "No matching distribution found for hatchling" in proc.stdout + proc.stderr:
        pytest.skip("hatchling cannot be installed here (no package index)")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (whl,) = out.glob("obskit-*.whl")
    return whl


def test_wheel_contains_the_template_trees(wheel):
    import zipfile

    names = zipfile.ZipFile(wheel).namelist()
    for rel in ("obskit/_data/configs/loki/loki.yaml.j2", "obskit/_data/compose/docker-compose.yaml.j2",
                "obskit/_data/configs/gateway/entrypoint.d/05-obskit-secrets.sh",
                "obskit/_data/configs/grafana/dashboards/stack-health.json",
                "obskit/spec/default.yaml", "obskit/starter.yaml", "obskit/stack_rules.yaml",
                "obskit/_data/load/scenarios/steady.yaml", "obskit/_data/terraform/modules/ecs/main.tf"):
        assert rel in names, rel
    assert not any("golden" in n or n.startswith("tests/") for n in names)


def test_installed_copy_renders_in_an_empty_folder(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False, system_site_packages=True).create(env_dir)
    py = env_dir / "bin" / "python"
    # Dependencies come from the surrounding environment; obskit itself from the wheel.
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index", str(wheel)],
                   check=True, capture_output=True, text=True)
    work = tmp_path / "empty"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OBSKIT", "PYTHONPATH"))}
    where = subprocess.run([str(py), "-c", "import obskit.resources as r; print(r.data_root())"],
                           cwd=work, env=env, capture_output=True, text=True, check=True).stdout.strip()
    assert where.startswith(str(env_dir)) and where.endswith("obskit/_data")
    proc = subprocess.run([str(env_dir / "bin" / "obskit"), "render"], cwd=work, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert (work / ".obskit/env/local/configs/loki/loki.yaml").is_file()
    assert (work / ".obskit/env/local/compose/docker-compose.yaml").is_file()

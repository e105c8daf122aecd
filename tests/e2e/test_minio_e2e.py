"""`object_store.provider: minio` end to end on a real engine: `obskit up` (compose) runs the
pinned MinIO image (on `.ci/engine`, the stand-in built from MinIO's source at that tag,
tests/standins/minio/CONTRACT.md), the one bucket job makes every bucket in it, `verify`
passes, and Loki's chunks land in MinIO's bucket.

Skips, saying why, when the MinIO image is neither on the engine nor pullable (no `minio`
program on the machine: MinIO is AGPL and is built outside this repository).
"""

from __future__ import annotations

import json
import subprocess
import time
import xml.etree.ElementTree as ET

import pytest

from obskit.project import Project
from obskit.spec.load import load_spec
from obskit.spec.model import Images

from e2e.helpers import obskit, write_project

pytestmark = pytest.mark.docker

S3 = "{http://s3.amazonaws.com/doc/2006-03-01/}"


def _minio_or_skip() -> None:
    from obskit.tools.compose import image_present

    image = Images().minio
    if image_present(image):
        return
    pulled = subprocess.run(["docker", "pull", "-q", image], capture_output=True, text=True, timeout=600)
    if pulled.returncode != 0:
        pytest.skip(f"{image} is not on this engine and cannot be pulled (.ci/engine builds its stand-in "
                    "from a minio program on PATH)")


def _container(project_dir, service: str) -> str:
    project = Project.of(load_spec(project_dir / "obskit.yaml", environ={}))
    out = subprocess.run(["docker", "ps", "-q", "--filter", f"label=com.docker.compose.project={project.project_name('local')}",
                          "--filter", f"label=com.docker.compose.service={service}"],
                         capture_output=True, text=True, timeout=60, check=True).stdout.split()
    assert len(out) == 1, out
    return out[0]


def _s3(container: str, *curl_args: str) -> str:
    """A signed request to MinIO's own S3 API from inside its container, with the root
    credentials compose gave it (read there, never printed here)."""
    script = ('exec curl -sS --fail-with-body --aws-sigv4 "aws:amz:us-east-1:s3" '
              '--user "$MINIO_ROOT_USER:$MINIO_ROOT_PASSWORD" "$@"')
    proc = subprocess.run(["docker", "exec", container, "sh", "-c", script, "s3", *curl_args],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout[-1000:] + proc.stderr[-1000:]
    return proc.stdout


def test_up_on_minio_makes_the_buckets_and_loki_writes_into_them(project_dir):
    _minio_or_skip()
    write_project(project_dir, "object_store:\n  provider: minio\n")
    up = json.loads(obskit(project_dir, "up", "--json").stdout)
    assert up["verify"] and all(o["ok"] for o in up["verify"]), up["verify"]

    status = {s["service"]: s for s in json.loads(obskit(project_dir, "status", "--json").stdout)}
    assert status["object-store"]["health"] == "healthy", status["object-store"]
    assert status["create-buckets"]["state"] == "exited" and status["create-buckets"]["exit_code"] == 0
    store = _container(project_dir, "object-store")
    image = subprocess.run(["docker", "inspect", "--format", "{{.Config.Image}}", store],
                           capture_output=True, text=True, timeout=60, check=True).stdout.strip()
    assert image == Images().minio

    buckets = sorted(load_spec(project_dir / "obskit.yaml", environ={}).spec.object_store.buckets.model_dump().values())
    job = obskit(project_dir, "logs", "create-buckets")
    for bucket in buckets:
        assert f"bucket {bucket}: ready" in job.stdout + job.stderr, job.stdout[-2000:]
    # MinIO itself lists them (ListBuckets, signed with its root credentials).
    listed = ET.fromstring(_s3(store, "http://localhost:9000/"))
    assert sorted(b.findtext(f"{S3}Name") for b in listed.iter(f"{S3}Bucket")) == buckets

    # Data flows into MinIO: Loki's ingester flushes the lines verify pushed, and its
    # chunks appear in the chunks bucket (polled; the flush is asynchronous).
    flush = subprocess.run(["docker", "exec", store, "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                            "-X", "POST", "http://loki:3100/flush"], capture_output=True, text=True, timeout=60)
    assert flush.stdout == "204", flush.stdout + flush.stderr
    chunks = load_spec(project_dir / "obskit.yaml", environ={}).spec.object_store.buckets.loki_chunks
    deadline = time.monotonic() + 180
    keys: list[str] = []
    while time.monotonic() < deadline:
        answer = ET.fromstring(_s3(store, f"http://localhost:9000/{chunks}?list-type=2"))
        keys = [c.findtext(f"{S3}Key") for c in answer.iter(f"{S3}Contents")]
        if keys:
            break
        time.sleep(2)
    assert keys, f"no object in {chunks} after Loki's flush"
    print(f"\n{len(keys)} object(s) in MinIO's {chunks}, e.g. {keys[0]}")

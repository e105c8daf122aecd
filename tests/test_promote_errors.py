"""Every AWS failure is one clear sentence with a hint, exit 2 (this machine's setup) or 4
(AWS said no), and no traceback; --json still prints what failed; bad AWS settings in the
spec are refused with exit 2."""

from __future__ import annotations

import json

import pytest
from botocore.stub import Stubber

from obskit.promote import cloud

from conftest import AWS_ENV


def _stubbed(monkeypatch, service: str, method: str, code: str, message: str):
    real = cloud.client(service, "eu-west-1")
    stub = Stubber(real)
    stub.add_client_error(method, service_error_code=code, service_message=message, http_status_code=400)
    stub.activate()
    monkeypatch.setattr(cloud, "client", lambda *_a, **_k: real)
    return stub


@pytest.fixture
def creds(monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def test_ssm_access_denied_is_one_sentence_exit_4(monkeypatch, creds):
    _stubbed(monkeypatch, "ssm", "get_parameters", "AccessDeniedException",
             "User: arn:aws:iam::123456789012:user/ci is not authorized to perform: ssm:GetParameters")
    with pytest.raises(cloud.AwsError) as info:
        cloud.read_parameters("eu-west-1", ["/obskit/obskit/prod/postgres-password"])
    assert info.value.exit_code == 4
    assert str(info.value).splitlines()[0].startswith(
        "reading SSM parameters (/obskit/obskit/prod/postgres-password): AccessDeniedException: User:")
    assert "lacks this permission" in info.value.hint


def test_expired_credentials_are_exit_2(monkeypatch, creds):
    _stubbed(monkeypatch, "sts", "get_caller_identity", "ExpiredToken", "The security token included in the request is expired")
    with pytest.raises(cloud.AwsError) as info:
        cloud.caller_identity("eu-west-1")
    assert info.value.exit_code == 2 and "expired" in info.value.message and "aws sso login" in info.value.hint


def test_put_parameter_errors_are_mapped(monkeypatch, creds):
    _stubbed(monkeypatch, "ssm", "put_parameter", "ParameterAlreadyExists", "The parameter already exists.")
    with pytest.raises(cloud.AwsError) as info:
        cloud.create_parameter("eu-west-1", "/obskit/x/prod/a", "v")
    assert info.value.exit_code == 4 and "ParameterAlreadyExists" in info.value.message and "v" != info.value.message


@pytest.mark.parametrize("case", ["missing profile", "no credentials", "unreachable endpoint"])
def test_the_cli_gives_one_line_and_no_traceback(case, run_obskit, tmp_path):
    (tmp_path / "obskit.yaml").write_text("tenants:\n  - name: apps\n" + AWS_ENV)
    env = {"AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
           "AWS_EC2_METADATA_DISABLED": "true", "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "",
           "AWS_PROFILE": "", "PATH": "/usr/bin:/bin"}
    if case == "missing profile":
        env["AWS_PROFILE"] = "nosuchprofile"
    elif case == "unreachable endpoint":
        env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_ENDPOINT_URL="http://127.0.0.1:9",
                   AWS_MAX_ATTEMPTS="1")
    env = {k: v for k, v in env.items() if v != ""}
    proc = run_obskit("promote", "--env", "prod", "--json", cwd=tmp_path, env=env)
    assert "Traceback" not in proc.stderr and "please report" not in proc.stderr, proc.stderr
    assert proc.returncode == 2, (proc.returncode, proc.stderr)  # preflight failed
    data = json.loads(proc.stdout)  # --json prints the failure
    assert data["ok"] is False and data["exit_code"] == 2
    failed = {c["name"]: c["detail"] for c in data["checks"] if not c["ok"]}
    expected = {"missing profile": "the AWS profile 'nosuchprofile' is not configured on this machine",
                "no credentials": "no AWS credentials found (set AWS_PROFILE",
                "unreachable endpoint": "cannot reach AWS"}[case]
    assert failed["aws credentials"].startswith(expected), failed
    assert "aws credentials: " + expected in proc.stderr


def test_a_profile_error_outside_preflight_is_exit_2(monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_PROFILE", "nosuchprofile")
    with pytest.raises(cloud.AwsConfigError) as info:
        cloud.read_parameters("eu-west-1", ["/a"])
    assert info.value.exit_code == 2 and "nosuchprofile" in info.value.message


@pytest.mark.parametrize("field, value, message", [
    ("vpc_cidr", "10.40.0.0/21", "is a /21: give a /16 to /19"),
    ("vpc_cidr", "10.40.0.1/16", "is not a network address"),
    ("vpc_cidr", "8.8.0.0/16", "is not a private range"),
    ("gateway", "{replicas: 3, max_replicas: 2}", "max_replicas 2 is below replicas 3"),
])
def test_bad_aws_settings_are_refused_with_exit_2(field, value, message, run_obskit, tmp_path):
    (tmp_path / "obskit.yaml").write_text("tenants:\n  - name: apps\n" + AWS_ENV + f"    {field}: {value}\n")
    proc = run_obskit("render", "--env", "prod", cwd=tmp_path)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_long_names_are_refused_before_aws_truncates_them(run_obskit, tmp_path):
    (tmp_path / "obskit.yaml").write_text("project: observability-platform\ntenants:\n  - name: apps\n"
                                          + AWS_ENV.replace("  prod:\n", "  production-eu:\n"))
    proc = run_obskit("render", "--env", "production-eu", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "'observability-platform-production-eu' (36 characters): it must be at most 32" in proc.stderr

"""Plan safety: plans in the exact JSON `terraform show -json` writes; a plan that
destroys or replaces the database, a bucket or a KMS key is refused without
--allow-data-loss."""

from __future__ import annotations

import json

import pytest

from obskit.promote.safety import PlanFormatError, PlanRefused, check, data_losses, summarize

from conftest import REPO

PLANS = REPO / "tests" / "fixtures" / "plans"


def plan(name: str) -> dict:
    return json.loads((PLANS / name).read_text())


def test_a_plan_that_keeps_the_data_passes():
    doc = plan("safe-update.json")
    assert check(doc, allow_data_loss=False) == []
    assert summarize(doc) == {"create": 0, "update": 1, "replace": 1, "delete": 0}  # a task definition, not data


def test_replacing_the_database_or_a_bucket_is_refused_with_each_named():
    doc = plan("replaces-stateful.json")
    with pytest.raises(PlanRefused) as info:
        check(doc, allow_data_loss=False)
    text = str(info.value)
    assert info.value.exit_code == 7
    assert "module.rds.aws_rds_cluster.this: the Grafana database (Aurora cluster) would be replaced (replace because cannot update)" in text
    assert 'module.storage.aws_s3_bucket.this["loki_chunks"]' in text
    assert "--allow-data-loss" in text
    # Create-before-destroy replacements lose the old bucket too.
    assert [loss.actions for loss in data_losses(doc)] == [("delete", "create"), ("create", "delete")]


def test_allow_data_loss_lets_it_through_and_still_reports():
    losses = check(plan("replaces-stateful.json"), allow_data_loss=True)
    assert [loss.type for loss in losses] == ["aws_rds_cluster", "aws_s3_bucket"]


def test_a_destroy_plan_names_the_database_and_the_key_and_ignores_data_sources():
    losses = data_losses(plan("destroy.json"))
    assert [(loss.address, loss.what.split(": ", 1)[1]) for loss in losses] == [
        ("module.rds.aws_rds_cluster.this", "the Grafana database (Aurora cluster) would be destroyed (delete because no resource config)"),
        ("module.storage.aws_kms_key.this", "a KMS key that encrypts stored data would be destroyed"),
    ]
    assert summarize(plan("destroy.json"))["delete"] == 3


def test_something_that_is_not_a_plan_is_refused():
    with pytest.raises(PlanFormatError, match="not the JSON of a Terraform plan"):
        check({"resource_changes": []}, allow_data_loss=False)

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


def _change(address: str, rtype: str, actions: list[str], before: dict | None = None) -> dict:
    return {"address": address, "mode": "managed", "type": rtype, "change": {"actions": actions, "before": before}}


def test_destroying_a_protected_database_or_alb_is_refused_before_apply():
    from obskit.promote.safety import check_protection

    doc = {"format_version": "1.2", "resource_changes": [
        _change("module.rds.aws_rds_cluster.this", "aws_rds_cluster", ["delete"], {"deletion_protection": True}),
        _change("module.load_balancer.aws_lb.this", "aws_lb", ["delete"], {"enable_deletion_protection": True}),
        _change("module.ecs.aws_ecs_cluster.this", "aws_ecs_cluster", ["delete"], {}),
    ]}
    with pytest.raises(PlanRefused) as info:
        check_protection(doc, "prod")
    text = str(info.value)
    assert "module.rds.aws_rds_cluster.this: set environments.prod.deletion_protection.database: false" in text
    assert "module.load_balancer.aws_lb.this: set environments.prod.deletion_protection.load_balancer: false" in text
    doc["resource_changes"][0]["change"]["before"]["deletion_protection"] = False
    doc["resource_changes"][1]["change"]["before"]["enable_deletion_protection"] = False
    check_protection(doc, "prod")  # off in the state: the destroy may go ahead


def test_a_destroyed_database_names_its_final_snapshot():
    doc = {"format_version": "1.2", "resource_changes": [_change(
        "module.rds.aws_rds_cluster.this", "aws_rds_cluster", ["delete"],
        {"skip_final_snapshot": False, "final_snapshot_identifier": "obskit-prod-grafana-final-20261201101010"})]}
    (loss,) = check(doc, allow_data_loss=True)
    assert loss.what.endswith("would be destroyed; its final snapshot obskit-prod-grafana-final-20261201101010 is kept")


def test_the_ecr_pre_step_may_only_create_or_update_repositories():
    from obskit.promote.safety import check_scoped

    ok = {"format_version": "1.2", "resource_changes": [
        _change('module.ecr.aws_ecr_repository.this["obskit-prod/loki"]', "aws_ecr_repository", ["create"]),
        _change("data.aws_caller_identity.current", "aws_caller_identity", ["read"])]}
    check_scoped(ok, "module.ecr.")
    for bad in (_change("module.network.aws_vpc.this", "aws_vpc", ["create"]),
                _change('module.ecr.aws_ecr_repository.this["obskit-prod/old"]', "aws_ecr_repository", ["delete"])):
        with pytest.raises(PlanRefused, match=bad["address"].replace("[", r"\[").replace("]", r"\]")):
            check_scoped({"format_version": "1.2", "resource_changes": [*ok["resource_changes"], bad]}, "module.ecr.")

"""Refusing plans that would lose data.

Reads the JSON of a saved plan (``terraform show -json PLAN``) and finds every change
that deletes or replaces a stateful resource: the database, the buckets, and the KMS keys
that encrypt them (a deleted key makes its data unreadable). Such a plan is applied only
with ``--allow-data-loss``.
"""

from __future__ import annotations

from dataclasses import dataclass

from obskit.errors import ObskitError

STATEFUL_TYPES = {
    "aws_rds_cluster": "the Grafana database (Aurora cluster)",
    "aws_db_instance": "a database instance",
    "aws_s3_bucket": "a bucket holding Loki or Mimir data",
    "aws_kms_key": "a KMS key that encrypts stored data",
    "aws_efs_file_system": "a file system",
    "aws_dynamodb_table": "a table",
}


class PlanRefused(ObskitError):
    exit_code = 7


class PlanFormatError(ObskitError):
    exit_code = 4


@dataclass(frozen=True)
class Loss:
    address: str
    type: str
    actions: tuple[str, ...]
    reason: str | None
    before: dict | None = None  # the resource's values in the state

    @property
    def what(self) -> str:
        verb = "replaced" if "create" in self.actions else "destroyed"
        because = f" ({self.reason.replace('_', ' ')})" if self.reason else ""
        return f"{self.address}: {STATEFUL_TYPES[self.type]} would be {verb}{because}{self._kept()}"

    def _kept(self) -> str:
        """What survives the deletion, when the state says so."""
        before = self.before or {}
        if self.type == "aws_rds_cluster" and before.get("skip_final_snapshot") is False and before.get("final_snapshot_identifier"):
            return f"; its final snapshot {before['final_snapshot_identifier']} is kept"
        return ""


def data_losses(plan: dict) -> list[Loss]:
    """Stateful resources the plan deletes or replaces."""
    if not isinstance(plan, dict) or "format_version" not in plan:
        raise PlanFormatError("this is not the JSON of a Terraform plan (no format_version)",
                              hint="it comes from `terraform show -json PLANFILE`")
    losses = []
    for change in plan.get("resource_changes", []):
        if change.get("mode", "managed") != "managed" or change.get("type") not in STATEFUL_TYPES:
            continue
        actions = tuple(change.get("change", {}).get("actions", []))
        if "delete" in actions:
            before = change.get("change", {}).get("before")
            losses.append(Loss(change["address"], change["type"], actions, change.get("action_reason"),
                               before if isinstance(before, dict) else None))
    return losses


def summarize(plan: dict) -> dict[str, int]:
    """How many resources the plan creates, updates, replaces and deletes."""
    counts = {"create": 0, "update": 0, "replace": 0, "delete": 0}
    for change in plan.get("resource_changes", []):
        actions = change.get("change", {}).get("actions", [])
        if "delete" in actions and "create" in actions:
            counts["replace"] += 1
        elif "delete" in actions:
            counts["delete"] += 1
        elif "create" in actions:
            counts["create"] += 1
        elif "update" in actions:
            counts["update"] += 1
    return counts


def check(plan: dict, *, allow_data_loss: bool) -> list[Loss]:
    """Raise PlanRefused for a plan that loses data, unless allowed; return the losses."""
    losses = data_losses(plan)
    if losses and not allow_data_loss:
        lines = "\n".join("  - " + loss.what for loss in losses)
        raise PlanRefused(
            f"the plan would destroy or replace {len(losses)} stateful resource(s); nothing was applied:\n{lines}",
            hint="if losing that data is intended, run again with --allow-data-loss",
        )
    return losses


# Deletion protection, per resource type: the argument that holds it and where the spec sets it.
PROTECTION = {
    "aws_rds_cluster": ("deletion_protection", "deletion_protection.database"),
    "aws_lb": ("enable_deletion_protection", "deletion_protection.load_balancer"),
}


def check_protection(plan: dict, env_name: str) -> None:
    """Refuse a plan that deletes a resource whose deletion protection is on in the state:
    AWS would refuse it halfway through the apply."""
    blocked = []
    for change in plan.get("resource_changes", []):
        spec = PROTECTION.get(change.get("type", ""))
        actions = change.get("change", {}).get("actions", [])
        before = change.get("change", {}).get("before") or {}
        if spec and "delete" in actions and before.get(spec[0]) is True:
            blocked.append((change["address"], spec[1]))
    if blocked:
        lines = "\n".join(f"  - {address}: set environments.{env_name}.{key}: false" for address, key in blocked)
        raise PlanRefused(
            f"the plan deletes {len(blocked)} resource(s) with deletion protection on; nothing was applied:\n{lines}",
            hint=f"turn the protection off in the spec, run `obskit promote --env {env_name} --apply`, then destroy",
        )


def check_scoped(plan: dict, prefix: str) -> None:
    """Refuse a targeted plan that changes anything outside ``prefix`` or deletes anything
    (the ECR pre-step may only create or update the repositories)."""
    bad = []
    for change in plan.get("resource_changes", []):
        actions = [a for a in change.get("change", {}).get("actions", []) if a not in ("no-op", "read")]
        if not actions:
            continue
        if not change["address"].startswith(prefix) or "delete" in actions:
            bad.append(f"{change['address']} ({'/'.join(actions)})")
    if bad:
        raise PlanRefused(f"the pre-step plan may only create or update {prefix.rstrip('.')}, but it would change:\n"
                          + "\n".join("  - " + b for b in bad), hint="nothing was applied; please report this")

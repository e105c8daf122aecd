# Aurora PostgreSQL for Grafana: encrypted with its own key, deletion-protected (from the
# spec), backed up, a final snapshot with a unique name on destroy. The password comes from
# SSM through an ephemeral resource and a write-only argument, so it is never written to
# the Terraform state or plan; the parameter's SSM version is the password version, so a
# rotated parameter (obskit secrets rotate) is sent to Aurora on the next apply.

ephemeral "aws_ssm_parameter" "password" {
  arn             = data.aws_ssm_parameter.password_arn.arn
  with_decryption = true
}

# Only the parameter's ARN (not its value) is read here: the value stays ephemeral.
data "aws_ssm_parameter" "password_arn" {
  name            = var.master_password_ssm_parameter
  with_decryption = false
}

data "aws_iam_policy_document" "key" {
  # checkov:skip=CKV_AWS_109:The account root may manage the key: the standard key policy statement that keeps the key administrable through IAM.
  # checkov:skip=CKV_AWS_111:The account root may use the key: the standard key policy statement; RDS uses it on the account's behalf.
  # checkov:skip=CKV_AWS_356:A key policy's resource is always the key itself ("*" within a key policy).
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }
}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

resource "aws_kms_key" "this" {
  description             = "${var.name} Grafana database"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.key.json
  tags                    = var.tags
}

# A suffix fixed when the cluster is first created: each cluster's final snapshot gets a
# name of its own, so a second destroy in the same account does not collide with the
# first one's snapshot.
resource "terraform_data" "snapshot_suffix" {
  input = formatdate("YYYYMMDDhhmmss", timestamp())

  lifecycle {
    ignore_changes = [input]
  }
}

resource "aws_db_subnet_group" "this" {
  name       = "${var.name}-grafana"
  subnet_ids = var.db_subnet_ids
  tags       = var.tags
}

# The log group RDS exports the postgresql log to: created first, with a retention, and
# destroyed with the cluster (RDS would create it without either, and leave it behind).
resource "aws_cloudwatch_log_group" "postgresql" {
  # checkov:skip=CKV_AWS_158:The database log is encrypted by CloudWatch's service key; a customer key needs a per-region key policy for the logs service, left to the account baseline.
  # checkov:skip=CKV_AWS_338:Retention is a spec setting (log_retention_days), as for the services' logs.
  name              = "/aws/rds/cluster/${var.name}-grafana/postgresql"
  retention_in_days = var.log_retention_days
  tags              = var.tags
}

resource "aws_rds_cluster" "this" {
  # checkov:skip=CKV2_AWS_27:Grafana issues many small queries; logging every statement would flood CloudWatch. Errors and the postgresql log are exported.
  # checkov:skip=CKV_AWS_162:Grafana logs in with the password from SSM and cannot use IAM tokens for its own database; IAM authentication left on unused would only be a second way in.
  # checkov:skip=CKV2_AWS_8:Automated backups (backup_retention_period) and a final snapshot protect the data; an AWS Backup plan is an organisation-level choice.
  cluster_identifier              = "${var.name}-grafana"
  engine                          = "aurora-postgresql"
  engine_version                  = var.engine_version
  database_name                   = var.database_name
  master_username                 = var.master_username
  master_password_wo              = ephemeral.aws_ssm_parameter.password.value
  master_password_wo_version      = data.aws_ssm_parameter.password_arn.version
  db_subnet_group_name            = aws_db_subnet_group.this.name
  vpc_security_group_ids          = [var.security_group_id]
  storage_encrypted               = true
  kms_key_id                      = aws_kms_key.this.arn
  deletion_protection             = var.deletion_protection
  backup_retention_period         = var.backup_retention_days
  copy_tags_to_snapshot           = true
  enabled_cloudwatch_logs_exports = ["postgresql"]
  skip_final_snapshot             = false
  final_snapshot_identifier       = "${var.name}-grafana-final-${terraform_data.snapshot_suffix.output}"
  allow_major_version_upgrade     = false
  # Created from a snapshot when the spec names one (database.restore_snapshot: the final
  # snapshot a destroy left, encrypted with the key the destroy kept). Only creation reads
  # it: naming or dropping it later changes nothing.
  snapshot_identifier = var.restore_snapshot
  tags                = var.tags

  lifecycle {
    # engine_version is the version the cluster is created with; AWS then applies minor
    # upgrades itself (auto_minor_version_upgrade), which a plan must not try to undo.
    ignore_changes = [engine_version, snapshot_identifier]
  }

  depends_on = [aws_cloudwatch_log_group.postgresql]
}

resource "aws_rds_cluster_instance" "this" {
  count = var.instances

  # checkov:skip=CKV_AWS_118:Performance insights and CloudWatch metrics cover Grafana's small database; enhanced monitoring would add an IAM role and per-second OS metrics it does not need.
  identifier                            = "${var.name}-grafana-${count.index}"
  cluster_identifier                    = aws_rds_cluster.this.id
  engine                                = aws_rds_cluster.this.engine
  engine_version                        = aws_rds_cluster.this.engine_version
  instance_class                        = var.instance_class
  db_subnet_group_name                  = aws_db_subnet_group.this.name
  auto_minor_version_upgrade            = true
  performance_insights_enabled          = true
  performance_insights_kms_key_id       = aws_kms_key.this.arn
  performance_insights_retention_period = 7
  monitoring_interval                   = 0
  publicly_accessible                   = false
  tags                                  = var.tags

  lifecycle {
    ignore_changes = [engine_version] # follows the cluster's minor upgrades
  }
}

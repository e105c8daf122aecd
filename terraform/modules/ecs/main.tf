# ECS Fargate: one cluster, and per obskit service a log group, a task definition (obskit
# renders the container definitions; Terraform fills in what only it knows) and a service
# registered in Cloud Map.

data "aws_partition" "current" {}

data "aws_caller_identity" "current" {}

resource "aws_ecs_cluster" "this" {
  name = var.name

  setting {
    name  = "containerInsights"
    value = "enabled"
  }

  tags = var.tags

  # The log group Container Insights writes to exists first, with a retention, and goes
  # with the cluster (AWS would create it without either).
  depends_on = [aws_cloudwatch_log_group.container_insights]
}

resource "aws_cloudwatch_log_group" "container_insights" {
  # checkov:skip=CKV_AWS_158:Container Insights metrics are encrypted by CloudWatch's service key; a customer key needs a per-region key policy for the logs service, left to the account baseline.
  # checkov:skip=CKV_AWS_338:Retention is a spec setting (log_retention_days), as for the services' own logs.
  name              = "/aws/ecs/containerinsights/${var.name}/performance"
  retention_in_days = var.log_retention_days
  tags              = var.tags
}

resource "aws_cloudwatch_log_group" "service" {
  for_each = var.services

  # checkov:skip=CKV_AWS_158:Logs are encrypted by CloudWatch's service key; a customer key would need a key policy for the logs service per region, which obskit leaves to the account's baseline.
  # checkov:skip=CKV_AWS_338:Retention is a spec setting (log_retention_days); the stack's own logs also reach Loki.
  name              = "${var.log_group_prefix}/${each.key}"
  retention_in_days = var.log_retention_days
  tags              = var.tags
}

# -- roles ---------------------------------------------------------------------------

# Only ECS tasks of this account may assume the roles (no confused deputy).
data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${data.aws_partition.current.partition}:ecs:${var.region}:${data.aws_caller_identity.current.account_id}:*"]
    }
  }
}

resource "aws_iam_role" "execution" {
  name               = "${var.name}-ecs-execution"
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy_attachment" "execution" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

locals {
  # Each SSM parameter ARN once: obskit's prefix/* and the spec's own ssm:/path references
  # (a name without a leading "/" still has one in its ARN).
  secret_arns = concat(
    ["${var.ssm_parameter_arn_prefix}${var.ssm_prefix}/*"],
    [for p in var.extra_ssm_parameters : "${var.ssm_parameter_arn_prefix}/${trimprefix(p, "/")}"],
  )
}

# The execution role reads this environment's secrets (SecureString), and the parameters
# the spec references by ssm:/path, and nothing else.
data "aws_iam_policy_document" "secrets" {
  statement {
    actions   = ["ssm:GetParameters"]
    resources = local.secret_arns
  }
  statement {
    actions   = ["kms:Decrypt"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["ssm.${var.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "secrets" {
  name   = "read-obskit-secrets"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.secrets.json
}

resource "aws_iam_role" "task" {
  for_each = var.services

  name               = "${var.name}-${each.key}"
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = var.tags
}

# Loki and Mimir may use their own buckets, and only those.
data "aws_iam_policy_document" "buckets" {
  for_each = local.with_buckets

  statement {
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = [for b in each.value.buckets : var.bucket_arns[b]]
  }
  statement {
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:GetObjectAttributes"]
    resources = [for b in each.value.buckets : "${var.bucket_arns[b]}/*"]
  }
  statement {
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.storage_kms_key_arn]
  }
}

resource "aws_iam_role_policy" "buckets" {
  for_each = local.with_buckets

  name   = "own-buckets"
  role   = aws_iam_role.task[each.key].id
  policy = data.aws_iam_policy_document.buckets[each.key].json
}

# ECS Exec (when on): the task opens its SSM session channel.
data "aws_iam_policy_document" "exec" {
  statement {
    actions = ["ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel",
    "ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel"]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "exec" {
  for_each = var.enable_execute_command ? var.services : {}

  # checkov:skip=CKV_AWS_355:The ssmmessages actions have no resource type: IAM accepts only "*" for them.
  name   = "ecs-exec"
  role   = aws_iam_role.task[each.key].id
  policy = data.aws_iam_policy_document.exec.json
}

# -- tasks and services ----------------------------------------------------------------

# Task definitions of the services that need no deploy-time output.
resource "aws_ecs_task_definition" "this" {
  for_each = local.plain

  family                   = "${var.name}-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = each.value.cpu
  memory                   = each.value.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task[each.key].arn
  container_definitions    = local.definitions[each.key]

  # Task storage for the folders an image writes at start (the gateway's rendered config
  # and secrets): one volume per mountPoint the container definitions name.
  dynamic "volume" {
    for_each = toset(flatten([for c in jsondecode(local.definitions[each.key]) : [for m in try(c.mountPoints, []) : m.sourceVolume]]))
    content {
      name = volume.value
    }
  }

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  # Fargate's task storage (20 GiB when unset): Loki's and Mimir's WAL, TSDB head and
  # compactor folders live there (sized by the spec: sizes.<component>.ephemeral_storage_gib).
  dynamic "ephemeral_storage" {
    for_each = each.value.ephemeral_storage_gib == null ? [] : [each.value.ephemeral_storage_gib]
    content {
      size_in_gib = ephemeral_storage.value
    }
  }

  tags = var.tags
  # A task starts with the execution role's permissions (ECR pull, SSM secrets, logs): they
  # exist before anything can start one.
  depends_on = [aws_cloudwatch_log_group.service, aws_iam_role_policy.secrets, aws_iam_role_policy_attachment.execution]
}

# Task definitions that name a deploy-time output (Grafana: the database endpoint).
resource "aws_ecs_task_definition" "needs_outputs" {
  for_each = local.needs_outputs

  family                   = "${var.name}-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = each.value.cpu
  memory                   = each.value.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task[each.key].arn
  container_definitions    = local.definitions_with_outputs[each.key]

  # Task storage for the folders an image writes at start (the gateway's rendered config
  # and secrets): one volume per mountPoint the container definitions name.
  dynamic "volume" {
    for_each = toset(flatten([for c in jsondecode(local.definitions_with_outputs[each.key]) : [for m in try(c.mountPoints, []) : m.sourceVolume]]))
    content {
      name = volume.value
    }
  }

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  # Fargate's task storage (20 GiB when unset): Loki's and Mimir's WAL, TSDB head and
  # compactor folders live there (sized by the spec: sizes.<component>.ephemeral_storage_gib).
  dynamic "ephemeral_storage" {
    for_each = each.value.ephemeral_storage_gib == null ? [] : [each.value.ephemeral_storage_gib]
    content {
      size_in_gib = ephemeral_storage.value
    }
  }

  tags = var.tags
  # A task starts with the execution role's permissions (ECR pull, SSM secrets, logs): they
  # exist before anything can start one.
  depends_on = [aws_cloudwatch_log_group.service, aws_iam_role_policy.secrets, aws_iam_role_policy_attachment.execution]
}

# Services with a fixed number of tasks.
resource "aws_ecs_service" "this" {
  for_each = local.fixed

  name                               = each.key
  cluster                            = aws_ecs_cluster.this.id
  task_definition                    = aws_ecs_task_definition.this[each.key].arn
  desired_count                      = each.value.desired_count
  launch_type                        = "FARGATE"
  platform_version                   = "LATEST"
  propagate_tags                     = "SERVICE"
  enable_ecs_managed_tags            = true
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  health_check_grace_period_seconds  = contains(keys(var.load_balanced), each.key) ? 120 : null
  wait_for_steady_state              = var.wait_for_steady_state
  enable_execute_command             = var.enable_execute_command
  # A rotated secret reaches running tasks only through a new deployment.
  force_new_deployment = true
  triggers             = { secrets = each.value.secrets_version }

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = [var.security_group_ids[each.value.component]]
    assign_public_ip = false
  }

  service_registries {
    registry_arn = var.service_registry_arns[each.key]
  }

  dynamic "load_balancer" {
    for_each = contains(keys(var.load_balanced), each.key) ? [var.load_balanced[each.key]] : []
    content {
      target_group_arn = load_balancer.value
      container_name   = each.key
      container_port   = each.value.port
    }
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  tags = var.tags

  # Destroyed before what Loki and Mimir need while they stop and flush to S3 (their S3
  # and KMS permissions, security group rules, the S3 gateway endpoint and its routes), and
  # before their Cloud Map service; created after the HTTPS listener (module input
  # load_balanced waits for it), as ECS requires of a target group.
  depends_on = [terraform_data.stop_dependencies, aws_iam_role_policy.buckets]
}

# Services that scale on CPU between desired_count and max_count.
resource "aws_ecs_service" "scaled" {
  for_each = local.scaled

  name                               = each.key
  cluster                            = aws_ecs_cluster.this.id
  task_definition                    = aws_ecs_task_definition.this[each.key].arn
  desired_count                      = each.value.desired_count
  launch_type                        = "FARGATE"
  platform_version                   = "LATEST"
  propagate_tags                     = "SERVICE"
  enable_ecs_managed_tags            = true
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  health_check_grace_period_seconds  = contains(keys(var.load_balanced), each.key) ? 120 : null
  wait_for_steady_state              = var.wait_for_steady_state
  enable_execute_command             = var.enable_execute_command
  # A rotated secret reaches running tasks only through a new deployment.
  force_new_deployment = true
  triggers             = { secrets = each.value.secrets_version }

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = [var.security_group_ids[each.value.component]]
    assign_public_ip = false
  }

  service_registries {
    registry_arn = var.service_registry_arns[each.key]
  }

  dynamic "load_balancer" {
    for_each = contains(keys(var.load_balanced), each.key) ? [var.load_balanced[each.key]] : []
    content {
      target_group_arn = load_balancer.value
      container_name   = each.key
      container_port   = each.value.port
    }
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  tags = var.tags

  # Destroyed before what Loki and Mimir need while they stop and flush to S3 (their S3
  # and KMS permissions, security group rules, the S3 gateway endpoint and its routes), and
  # before their Cloud Map service; created after the HTTPS listener (module input
  # load_balanced waits for it), as ECS requires of a target group.
  depends_on = [terraform_data.stop_dependencies, aws_iam_role_policy.buckets]

  lifecycle {
    ignore_changes = [desired_count] # owned by the autoscaling policy below
  }
}

# Mimir's replicas (var.rolled_components): created on their task definitions like the
# others, but a new task definition does not update them here. Terraform updates the
# instances of one resource in parallel, so it would replace every replica at once (every
# config change does); `obskit promote --apply` rolls them after the apply instead, in
# replica order, each steady on its new task definition before the next
# (cloud.roll_services; the root output rolled_task_definitions says to what).
resource "aws_ecs_service" "rolled" {
  for_each = local.rolled

  name                               = each.key
  cluster                            = aws_ecs_cluster.this.id
  task_definition                    = aws_ecs_task_definition.this[each.key].arn
  desired_count                      = each.value.desired_count
  launch_type                        = "FARGATE"
  platform_version                   = "LATEST"
  propagate_tags                     = "SERVICE"
  enable_ecs_managed_tags            = true
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  wait_for_steady_state              = var.wait_for_steady_state
  enable_execute_command             = var.enable_execute_command
  # A rotated secret reaches running tasks only through a new deployment (Mimir reads no
  # secret today: its S3 access is its task role; a test keeps it so).
  force_new_deployment = true
  triggers             = { secrets = each.value.secrets_version }

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = [var.security_group_ids[each.value.component]]
    assign_public_ip = false
  }

  service_registries {
    registry_arn = var.service_registry_arns[each.key]
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  tags = var.tags

  # As for the other services: destroyed before what the flush to S3 needs and before
  # their Cloud Map service.
  depends_on = [terraform_data.stop_dependencies, aws_iam_role_policy.buckets]

  lifecycle {
    # promote rolls a new task definition in, one replica at a time.
    ignore_changes = [task_definition]
  }
}

# Services whose task definitions name a deploy-time output (Grafana), as fixed services.
resource "aws_ecs_service" "needs_outputs" {
  for_each = local.needs_outputs

  name                               = each.key
  cluster                            = aws_ecs_cluster.this.id
  task_definition                    = aws_ecs_task_definition.needs_outputs[each.key].arn
  desired_count                      = each.value.desired_count
  launch_type                        = "FARGATE"
  platform_version                   = "LATEST"
  propagate_tags                     = "SERVICE"
  enable_ecs_managed_tags            = true
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  health_check_grace_period_seconds  = contains(keys(var.load_balanced), each.key) ? 120 : null
  wait_for_steady_state              = var.wait_for_steady_state
  enable_execute_command             = var.enable_execute_command
  # A rotated secret reaches running tasks only through a new deployment.
  force_new_deployment = true
  triggers             = { secrets = each.value.secrets_version }

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = [var.security_group_ids[each.value.component]]
    assign_public_ip = false
  }

  service_registries {
    registry_arn = var.service_registry_arns[each.key]
  }

  dynamic "load_balancer" {
    for_each = contains(keys(var.load_balanced), each.key) ? [var.load_balanced[each.key]] : []
    content {
      target_group_arn = load_balancer.value
      container_name   = each.key
      container_port   = each.value.port
    }
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  tags = var.tags

  # Destroyed before what Loki and Mimir need while they stop and flush to S3 (their S3
  # and KMS permissions, security group rules, the S3 gateway endpoint and its routes), and
  # before their Cloud Map service; created after the HTTPS listener (module input
  # load_balanced waits for it), as ECS requires of a target group.
  depends_on = [terraform_data.stop_dependencies, aws_iam_role_policy.buckets]
}

# What Loki and Mimir need while their tasks stop and flush to S3 (IDs from the root): the
# services depend on it, so a destroy deletes them, and waits for their tasks, first.
resource "terraform_data" "stop_dependencies" {
  input = var.stop_dependencies
}

# Grafana moved to resources of its own (it alone waits for the database endpoint).
moved {
  from = aws_ecs_task_definition.this["grafana"]
  to   = aws_ecs_task_definition.needs_outputs["grafana"]
}

moved {
  from = aws_ecs_service.this["grafana"]
  to   = aws_ecs_service.needs_outputs["grafana"]
}

# Mimir's replicas moved to resources of their own (promote rolls them); every replica
# count the spec allows (1-9).
moved {
  from = aws_ecs_service.this["mimir-1"]
  to   = aws_ecs_service.rolled["mimir-1"]
}

moved {
  from = aws_ecs_service.this["mimir-2"]
  to   = aws_ecs_service.rolled["mimir-2"]
}

moved {
  from = aws_ecs_service.this["mimir-3"]
  to   = aws_ecs_service.rolled["mimir-3"]
}

moved {
  from = aws_ecs_service.this["mimir-4"]
  to   = aws_ecs_service.rolled["mimir-4"]
}

moved {
  from = aws_ecs_service.this["mimir-5"]
  to   = aws_ecs_service.rolled["mimir-5"]
}

moved {
  from = aws_ecs_service.this["mimir-6"]
  to   = aws_ecs_service.rolled["mimir-6"]
}

moved {
  from = aws_ecs_service.this["mimir-7"]
  to   = aws_ecs_service.rolled["mimir-7"]
}

moved {
  from = aws_ecs_service.this["mimir-8"]
  to   = aws_ecs_service.rolled["mimir-8"]
}

moved {
  from = aws_ecs_service.this["mimir-9"]
  to   = aws_ecs_service.rolled["mimir-9"]
}

resource "aws_appautoscaling_target" "this" {
  for_each = local.scaled

  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.this.name}/${aws_ecs_service.scaled[each.key].name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = each.value.desired_count
  max_capacity       = each.value.max_count
  tags               = var.tags
}

resource "aws_appautoscaling_policy" "cpu" {
  for_each = local.scaled

  name               = "${var.name}-${each.key}-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.this[each.key].service_namespace
  resource_id        = aws_appautoscaling_target.this[each.key].resource_id
  scalable_dimension = aws_appautoscaling_target.this[each.key].scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = each.value.cpu_target_percent
    scale_in_cooldown  = 300
    scale_out_cooldown = 60

    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}

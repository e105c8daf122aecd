# A VPC over two AZs: public subnets (the ALB, NAT), ECS subnets (tasks; AWS's APIs through
# VPC endpoints: S3 as a gateway endpoint, ECR, SSM and CloudWatch Logs as interface
# endpoints; the internet through NAT, which only Grafana's security group may use) and DB
# subnets (no route out).

locals {
  public_cidrs = [for i in range(2) : cidrsubnet(var.cidr, 8, i)]
  ecs_cidrs    = [for i in range(2) : cidrsubnet(var.cidr, 4, i + 1)]
  db_cidrs     = [for i in range(2) : cidrsubnet(var.cidr, 8, i + 250)]
  nat_count    = var.single_nat_gateway ? 1 : 2
}

resource "aws_vpc" "this" {
  cidr_block           = var.cidr
  enable_dns_support   = true
  enable_dns_hostnames = true
  tags                 = merge(var.tags, { Name = var.name })
}

# The default security group allows nothing.
resource "aws_default_security_group" "this" {
  vpc_id = aws_vpc.this.id
  tags   = merge(var.tags, { Name = "${var.name}-default-deny" })
}

resource "aws_internet_gateway" "this" {
  vpc_id = aws_vpc.this.id
  tags   = merge(var.tags, { Name = var.name })
}

resource "aws_subnet" "public" {
  count = 2

  vpc_id            = aws_vpc.this.id
  cidr_block        = local.public_cidrs[count.index]
  availability_zone = var.azs[count.index]
  tags              = merge(var.tags, { Name = "${var.name}-public-${var.azs[count.index]}", Tier = "public" })
}

resource "aws_subnet" "ecs" {
  count = 2

  vpc_id            = aws_vpc.this.id
  cidr_block        = local.ecs_cidrs[count.index]
  availability_zone = var.azs[count.index]
  tags              = merge(var.tags, { Name = "${var.name}-ecs-${var.azs[count.index]}", Tier = "ecs" })
}

resource "aws_subnet" "db" {
  count = 2

  vpc_id            = aws_vpc.this.id
  cidr_block        = local.db_cidrs[count.index]
  availability_zone = var.azs[count.index]
  tags              = merge(var.tags, { Name = "${var.name}-db-${var.azs[count.index]}", Tier = "db" })
}

resource "aws_eip" "nat" {
  count = local.nat_count

  domain = "vpc"
  tags   = merge(var.tags, { Name = "${var.name}-nat-${count.index}" })
}

resource "aws_nat_gateway" "this" {
  count = local.nat_count

  allocation_id = aws_eip.nat[count.index].id
  subnet_id     = aws_subnet.public[count.index].id
  tags          = merge(var.tags, { Name = "${var.name}-${var.azs[count.index]}" })
  depends_on    = [aws_internet_gateway.this]
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.this.id
  tags   = merge(var.tags, { Name = "${var.name}-public" })
}

resource "aws_route" "public_internet" {
  route_table_id         = aws_route_table.public.id
  destination_cidr_block = "0.0.0.0/0"
  gateway_id             = aws_internet_gateway.this.id
}

resource "aws_route_table_association" "public" {
  count = 2

  subnet_id      = aws_subnet.public[count.index].id
  route_table_id = aws_route_table.public.id
}

resource "aws_route_table" "ecs" {
  count = 2

  vpc_id = aws_vpc.this.id
  tags   = merge(var.tags, { Name = "${var.name}-ecs-${var.azs[count.index]}" })
}

resource "aws_route" "ecs_nat" {
  count = 2

  route_table_id         = aws_route_table.ecs[count.index].id
  destination_cidr_block = "0.0.0.0/0"
  nat_gateway_id         = aws_nat_gateway.this[var.single_nat_gateway ? 0 : count.index].id
}

resource "aws_route_table_association" "ecs" {
  count = 2

  subnet_id      = aws_subnet.ecs[count.index].id
  route_table_id = aws_route_table.ecs[count.index].id
}

# DB subnets have no route out of the VPC.
resource "aws_route_table" "db" {
  vpc_id = aws_vpc.this.id
  tags   = merge(var.tags, { Name = "${var.name}-db" })
}

resource "aws_route_table_association" "db" {
  count = 2

  subnet_id      = aws_subnet.db[count.index].id
  route_table_id = aws_route_table.db.id
}

data "aws_region" "current" {}

# S3 without NAT: ECR's image layers for every task, and Loki's and Mimir's data.
resource "aws_vpc_endpoint" "s3" {
  vpc_id            = aws_vpc.this.id
  service_name      = "com.amazonaws.${data.aws_region.current.region}.s3"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = aws_route_table.ecs[*].id
  tags              = merge(var.tags, { Name = "${var.name}-s3" })
}

# ECR (api, dkr), SSM and CloudWatch Logs, reached through the tasks' own network
# interfaces (Fargate pulls images, reads secrets and ships logs through them). Private DNS
# makes the regional names resolve to these endpoints.
resource "aws_vpc_endpoint" "interface" {
  for_each = toset(var.interface_endpoints)

  vpc_id              = aws_vpc.this.id
  service_name        = "com.amazonaws.${data.aws_region.current.region}.${each.key}"
  vpc_endpoint_type   = "Interface"
  subnet_ids          = aws_subnet.ecs[*].id
  security_group_ids  = [var.endpoint_security_group_id]
  private_dns_enabled = true
  tags                = merge(var.tags, { Name = "${var.name}-${each.key}" })
}

# -- flow logs -------------------------------------------------------------------------

resource "aws_cloudwatch_log_group" "flow" {
  # checkov:skip=CKV_AWS_158:Flow logs are encrypted by CloudWatch's service key; a customer key needs a per-region key policy for the logs service, left to the account baseline.
  # checkov:skip=CKV_AWS_338:Retention is a module input (flow_log_retention_days, default 30 days) sized for troubleshooting, not audit.
  name              = "/obskit/${var.name}/vpc-flow-logs"
  retention_in_days = var.flow_log_retention_days
  tags              = var.tags
}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

# As "IAM role for publishing flow logs to CloudWatch Logs" gives it: the flow-logs service
# may assume the role only for this account's flow logs (no confused deputy), and the role
# may create and describe streams and write events in this log group.
# https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-iam-role.html
data "aws_iam_policy_document" "flow_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["vpc-flow-logs.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${data.aws_partition.current.partition}:ec2:${data.aws_region.current.region}:${data.aws_caller_identity.current.account_id}:vpc-flow-log/*"]
    }
  }
}

resource "aws_iam_role" "flow" {
  name               = "${var.name}-vpc-flow-logs"
  assume_role_policy = data.aws_iam_policy_document.flow_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "flow" {
  statement {
    actions   = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = [aws_cloudwatch_log_group.flow.arn, "${aws_cloudwatch_log_group.flow.arn}:*"]
  }
  # DescribeLogGroups lists; it is scoped to this account's log groups in this Region.
  statement {
    actions   = ["logs:DescribeLogGroups"]
    resources = ["arn:${data.aws_partition.current.partition}:logs:${data.aws_region.current.region}:${data.aws_caller_identity.current.account_id}:log-group:*"]
  }
}

resource "aws_iam_role_policy" "flow" {
  name   = "write-flow-logs"
  role   = aws_iam_role.flow.id
  policy = data.aws_iam_policy_document.flow.json
}

resource "aws_flow_log" "this" {
  vpc_id          = aws_vpc.this.id
  traffic_type    = "ALL"
  log_destination = aws_cloudwatch_log_group.flow.arn
  iam_role_arn    = aws_iam_role.flow.arn
  tags            = var.tags
}

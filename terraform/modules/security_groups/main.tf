# One security group per role; every rule is its own resource and names its peer.
# Only the ALB is reachable from outside; only the gateway reaches Loki, Mimir and the
# collector's intake; only Grafana reaches the database; the tasks reach AWS's APIs
# through the VPC endpoints only. The rules are the table in rules.tf.

resource "aws_security_group" "this" {
  for_each = local.roles

  # checkov:skip=CKV2_AWS_5:The groups are attached by the load_balancer, ecs and rds_grafana modules, which take their ids as inputs.
  # A prefix, not a fixed name: a changed description replaces the group, and the new one
  # is created before the old one is gone.
  name_prefix = "${var.name}-${each.key}-"
  description = each.value
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name}-${each.key}" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "this" {
  for_each = { for k, r in local.rules : k => r if r.ingress }

  # checkov:skip=CKV_AWS_260:Only the ALB's HTTP listener is open to the internet, and it answers nothing but a redirect to HTTPS.
  security_group_id            = aws_security_group.this[each.value.role].id
  description                  = each.value.description
  ip_protocol                  = each.value.protocol
  from_port                    = each.value.port
  to_port                      = each.value.port
  cidr_ipv4                    = each.value.kind == "cidr" ? each.value.peer : null
  referenced_security_group_id = each.value.kind == "sg" ? aws_security_group.this[each.value.peer].id : (each.value.kind == "self" ? aws_security_group.this[each.value.role].id : null)
  tags                         = var.tags
}

resource "aws_vpc_security_group_egress_rule" "this" {
  for_each = { for k, r in local.rules : k => r if !r.ingress }

  security_group_id            = aws_security_group.this[each.value.role].id
  description                  = each.value.description
  ip_protocol                  = each.value.protocol
  from_port                    = each.value.port
  to_port                      = each.value.port
  cidr_ipv4                    = each.value.kind == "cidr" ? each.value.peer : null
  prefix_list_id               = each.value.kind == "prefix" ? var.s3_prefix_list_id : null
  referenced_security_group_id = each.value.kind == "sg" ? aws_security_group.this[each.value.peer].id : (each.value.kind == "self" ? aws_security_group.this[each.value.role].id : null)
  tags                         = var.tags
}

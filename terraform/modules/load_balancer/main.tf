# The public entry: an ALB with HTTPS (ACM certificate, TLS 1.3 policy) and an HTTP
# listener that only redirects. Targets are ECS tasks by IP, health-checked on each
# component's real health path.

locals {
  default_target = one([for k, t in var.targets : k if t.default])
  rules          = { for k, t in var.targets : k => t if !t.default }
}

resource "aws_lb" "this" {
  # checkov:skip=CKV2_AWS_28:A WAF is a per-organisation choice (and cost); the gateway behind the ALB authenticates, rate-limits and filters every request.
  # checkov:skip=CKV_AWS_91:Access logging is a spec option (alb_access_logs, off by default); the gateway writes a JSON access log of every request to Loki.
  name                       = var.name
  load_balancer_type         = "application"
  ip_address_type            = "ipv4"
  internal                   = false
  security_groups            = [var.security_group_id]
  subnets                    = var.public_subnet_ids
  idle_timeout               = var.idle_timeout
  drop_invalid_header_fields = true
  enable_deletion_protection = var.deletion_protection

  dynamic "access_logs" {
    for_each = var.access_logs_bucket == null ? [] : [var.access_logs_bucket]
    content {
      bucket  = access_logs.value
      prefix  = "alb"
      enabled = true
    }
  }

  tags = merge(var.tags, { Name = var.name })
}

resource "aws_lb_target_group" "this" {
  for_each = var.targets

  # A prefix (at most 6 characters), not a fixed name: a replaced target group (a new port)
  # is created before the old one is gone.
  name_prefix          = "${substr(each.key, 0, 5)}-"
  port                 = each.value.port
  protocol             = each.value.protocol
  target_type          = "ip"
  vpc_id               = var.vpc_id
  deregistration_delay = 30

  health_check {
    path                = each.value.health_path
    protocol            = each.value.protocol
    matcher             = each.value.health_matcher
    interval            = 15
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }

  tags = merge(var.tags, { Name = "${var.name}-${each.key}" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_lb_listener" "http" {
  # checkov:skip=CKV_AWS_2:This listener only answers with a permanent redirect to HTTPS.
  # checkov:skip=CKV_AWS_103:This listener only answers with a permanent redirect to HTTPS.
  load_balancer_arn = aws_lb.this.arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type = "redirect"
    redirect {
      port        = "443"
      protocol    = "HTTPS"
      status_code = "HTTP_301"
    }
  }
}

resource "aws_lb_listener" "https" {
  load_balancer_arn = aws_lb.this.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = var.ssl_policy
  certificate_arn   = var.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.this[local.default_target].arn
  }
}

resource "aws_lb_listener_rule" "this" {
  for_each = local.rules

  listener_arn = aws_lb_listener.https.arn
  priority     = each.value.priority

  action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.this[each.key].arn
  }

  condition {
    path_pattern {
      values = each.value.path_patterns
    }
  }
}

# The gateway's public name: an alias record to the ALB, and the certificate for it
# (the one given, or one issued by ACM and validated through DNS in the same zone).

locals {
  issue = var.certificate_arn == null
}

resource "terraform_data" "inputs" {
  lifecycle {
    precondition {
      condition     = var.hosted_zone_id != null || var.certificate_arn != null
      error_message = "Set hosted_zone_id (obskit issues a certificate) or certificate_arn."
    }
  }
}

resource "aws_acm_certificate" "this" {
  count = local.issue ? 1 : 0

  domain_name       = var.domain
  validation_method = "DNS"
  tags              = merge(var.tags, { Name = var.domain })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_route53_record" "validation" {
  for_each = local.issue ? {
    for o in aws_acm_certificate.this[0].domain_validation_options : o.domain_name => o
  } : {}

  zone_id         = var.hosted_zone_id
  name            = each.value.resource_record_name
  type            = each.value.resource_record_type
  records         = [each.value.resource_record_value]
  ttl             = 300
  allow_overwrite = true
}

resource "aws_acm_certificate_validation" "this" {
  count = local.issue ? 1 : 0

  certificate_arn         = aws_acm_certificate.this[0].arn
  validation_record_fqdns = [for r in aws_route53_record.validation : r.fqdn]
}

# IPv4 only: the ALB is created with ip_address_type "ipv4", so an AAAA alias would
# point at nothing.
resource "aws_route53_record" "alias" {
  for_each = var.hosted_zone_id == null ? toset([]) : toset(["A"])

  zone_id = var.hosted_zone_id
  name    = var.domain
  type    = each.key

  alias {
    name                   = var.alb_dns_name
    zone_id                = var.alb_zone_id
    evaluate_target_health = true
  }
}

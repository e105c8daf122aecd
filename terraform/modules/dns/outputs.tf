output "certificate_arn" {
  description = "The certificate of the HTTPS listener: the given one, or the issued and validated one."
  value       = local.issue ? aws_acm_certificate_validation.this[0].certificate_arn : var.certificate_arn
}

output "fqdn" {
  description = "The gateway's public name."
  value       = var.domain
}

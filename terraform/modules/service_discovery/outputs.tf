output "namespace_id" {
  description = "ID of the private DNS namespace."
  value       = aws_service_discovery_private_dns_namespace.this.id
}

output "namespace_name" {
  description = "Name of the namespace."
  value       = aws_service_discovery_private_dns_namespace.this.name
}

output "service_arns" {
  description = "Cloud Map service ARN per service name (for ECS service_registries)."
  value       = { for k, s in aws_service_discovery_service.this : k => s.arn }
}

output "hostnames" {
  description = "DNS name per service."
  value       = { for k in var.services : k => "${k}.${var.namespace}" }
}

output "alb" {
  description = "Security group of the ALB."
  value       = aws_security_group.this["alb"].id
}

output "gateway" {
  description = "Security group of the gateway."
  value       = aws_security_group.this["gateway"].id
}

output "grafana" {
  description = "Security group of Grafana."
  value       = aws_security_group.this["grafana"].id
}

output "loki" {
  description = "Security group of Loki."
  value       = aws_security_group.this["loki"].id
}

output "mimir" {
  description = "Security group of the Mimir replicas."
  value       = aws_security_group.this["mimir"].id
}

output "otelcol" {
  description = "Security group of the collector."
  value       = aws_security_group.this["otelcol"].id
}

output "rds" {
  description = "Security group of the database."
  value       = aws_security_group.this["rds"].id
}

output "endpoints" {
  description = "Security group of the VPC interface endpoints."
  value       = aws_security_group.this["endpoints"].id
}

output "ingester_rule_ids" {
  description = "Every rule of Loki and Mimir (S3, the VPC endpoints, gossip and gRPC among replicas): what they need while they stop and flush (for ordering on destroy)."
  value = concat(
    [for k, r in aws_vpc_security_group_egress_rule.this : r.id if contains(["loki", "mimir"], local.rules[k].role)],
    [for k, r in aws_vpc_security_group_ingress_rule.this : r.id if contains(["loki", "mimir"], local.rules[k].role)],
  )
}

output "ids" {
  description = "Every security group by role (alb, gateway, grafana, loki, mimir, otelcol, rds, endpoints)."
  value       = { for role, sg in aws_security_group.this : role => sg.id }
}

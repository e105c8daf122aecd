output "endpoint" {
  description = "Writer endpoint (host name) Grafana connects to."
  value       = aws_rds_cluster.this.endpoint
}

output "reader_endpoint" {
  description = "Reader endpoint."
  value       = aws_rds_cluster.this.reader_endpoint
}

output "port" {
  description = "PostgreSQL port."
  value       = aws_rds_cluster.this.port
}

output "cluster_arn" {
  description = "ARN of the cluster."
  value       = aws_rds_cluster.this.arn
}

output "cluster_identifier" {
  description = "Identifier of the cluster."
  value       = aws_rds_cluster.this.cluster_identifier
}

output "database_name" {
  description = "Grafana's database."
  value       = aws_rds_cluster.this.database_name
}

output "master_username" {
  description = "The user Grafana connects as."
  value       = aws_rds_cluster.this.master_username
}

output "kms_key_arn" {
  description = "The key that encrypts the cluster."
  value       = aws_kms_key.this.arn
}

output "final_snapshot_identifier" {
  description = "The snapshot a destroy of the cluster leaves behind (encrypted with kms_key_arn, which destroy keeps)."
  value       = aws_rds_cluster.this.final_snapshot_identifier
}

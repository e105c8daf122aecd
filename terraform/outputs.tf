output "url" {
  description = "The gateway's public URL: OTLP at /otlp/v1/{logs,metrics}, queries at /loki and /prometheus."
  value       = "https://${module.dns.fqdn}"
}

output "grafana_url" {
  description = "Grafana, served through the gateway under its sub-path."
  value       = "https://${module.dns.fqdn}${var.grafana_sub_path}/"
}

output "alb_dns_name" {
  description = "DNS name of the load balancer (point the domain at it when Route53 is not used)."
  value       = module.load_balancer.dns_name
}

output "grafana_database_endpoint" {
  description = "Aurora endpoint Grafana connects to."
  value       = module.rds.endpoint
}

output "ecr_repository_urls" {
  description = "ECR repository URL per repository name."
  value       = module.ecr.repository_urls
}

output "cluster_name" {
  description = "The ECS cluster."
  value       = module.ecs.cluster_name
}

output "config_hashes" {
  description = "The config hash of each component that runs (compare with compose's dev.obskit.config-hash labels)."
  value       = var.config_hashes
}

output "kept_on_destroy" {
  description = "What `obskit promote --destroy` leaves in place because data outlives the stack: the buckets, the keys that encrypt them and the database's final snapshot."
  value = {
    buckets                   = values(module.storage.bucket_names)
    storage_kms_key_arn       = module.storage.kms_key_arn
    database_kms_key_arn      = module.rds.kms_key_arn
    final_snapshot_identifier = module.rds.final_snapshot_identifier
  }
}

output "rolled_task_definitions" {
  description = "Mimir's replicas: the task definition each runs once `obskit promote --apply` has rolled it (one replica at a time, after the apply)."
  value       = module.ecs.rolled_task_definitions
}

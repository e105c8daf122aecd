output "cluster_name" {
  description = "Name of the ECS cluster."
  value       = aws_ecs_cluster.this.name
}

output "cluster_arn" {
  description = "ARN of the ECS cluster."
  value       = aws_ecs_cluster.this.arn
}

output "service_names" {
  description = "ECS service name per obskit service."
  value       = { for k, s in merge(aws_ecs_service.this, aws_ecs_service.scaled, aws_ecs_service.rolled, aws_ecs_service.needs_outputs) : k => s.name }
}

output "task_definition_arns" {
  description = "Task definition ARN (with revision) per obskit service."
  value       = { for k, t in merge(aws_ecs_task_definition.this, aws_ecs_task_definition.needs_outputs) : k => t.arn }
}

output "log_groups" {
  description = "CloudWatch log group per obskit service."
  value       = { for k, g in aws_cloudwatch_log_group.service : k => g.name }
}

output "task_role_arns" {
  description = "Task role ARN per obskit service."
  value       = { for k, r in aws_iam_role.task : k => r.arn }
}

output "rolled_task_definitions" {
  description = "Per service that promote rolls one at a time (Mimir's replicas): the task definition ARN (with revision) Terraform registered, which the service runs once rolled."
  value       = { for k, s in aws_ecs_service.rolled : k => aws_ecs_task_definition.this[k].arn }
}

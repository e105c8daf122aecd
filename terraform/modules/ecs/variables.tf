variable "name" {
  description = "Prefix of every resource name, e.g. obskit-prod."
  type        = string
}

variable "region" {
  description = "AWS region of the cluster (for log configuration and ARNs)."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets the tasks run in (no public IPs)."
  type        = list(string)
}

variable "services" {
  description = "One entry per ECS service, as obskit renders it: the component it runs, Fargate size, desired count (the minimum when max_count is larger: then it scales on CPU towards cpu_target_percent), a fingerprint of its secrets' SSM versions (a change redeploys it), main port, health path, the buckets its task role may use, its container definitions (JSON with obskit's placeholders) and its Fargate ephemeral storage in GiB (null: Fargate's 20)."
  type = map(object({
    component             = string
    cpu                   = number
    memory                = number
    desired_count         = number
    max_count             = number
    cpu_target_percent    = number
    secrets_version       = string
    port                  = number
    health_path           = string
    buckets               = list(string)
    container_definitions = string
    ephemeral_storage_gib = optional(number)
  }))
}

variable "rolled_components" {
  description = "Components whose services Terraform creates but does not move to a new task definition: `obskit promote --apply` rolls them one service at a time (Mimir's replicas, which share a ring)."
  type        = list(string)
  default     = ["mimir"]
}

variable "stop_dependencies" {
  description = "IDs of what Loki and Mimir need while their tasks stop and flush to S3 (security group rules, the S3 gateway endpoint and its route table associations, bucket policies): every service is destroyed before them."
  type        = list(string)
  default     = []
}

variable "security_group_ids" {
  description = "Security group per component (loki, mimir, otelcol, grafana, gateway)."
  type        = map(string)
}

variable "service_registry_arns" {
  description = "Cloud Map service ARN per ECS service name, for service discovery."
  type        = map(string)
}

variable "load_balanced" {
  description = "Target group ARN per ECS service that sits behind the ALB (the gateway)."
  type        = map(string)
  default     = {}
}

variable "ssm_parameter_arn_prefix" {
  description = "ARN prefix of SSM parameters (arn:aws:ssm:REGION:ACCOUNT:parameter); obskit's parameter names follow it."
  type        = string
}

variable "ssm_prefix" {
  description = "The path under which obskit writes this environment's secrets, e.g. /obskit/obskit/prod."
  type        = string
}

variable "extra_ssm_parameters" {
  description = "SSM parameter names outside ssm_prefix that container definitions reference (the spec's ssm:/path secrets)."
  type        = list(string)
  default     = []
}

variable "wait_for_steady_state" {
  description = "Wait until each service is stable after a change (apply fails on crash-looping tasks)."
  type        = bool
  default     = true
}

variable "enable_execute_command" {
  description = "Allow ECS Exec into the tasks."
  type        = bool
  default     = false
}

variable "outputs" {
  description = "Deploy-time values the container definitions refer to as __OBSKIT_OUTPUT_<name>__."
  type        = map(string)
}

variable "bucket_arns" {
  description = "ARN per bucket name, for the task roles."
  type        = map(string)
}

variable "storage_kms_key_arn" {
  description = "The KMS key that encrypts the buckets; task roles that use a bucket may use it."
  type        = string
}

variable "log_group_prefix" {
  description = "Log groups are <prefix>/<service>; must match the awslogs-group obskit writes (/obskit/PROJECT/ENV)."
  type        = string
}

variable "log_retention_days" {
  description = "CloudWatch Logs retention of every service's log group."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

# Every variable here is written by obskit (`obskit promote` renders <env>.tfvars.json from
# the spec); the last few are tunables with defaults.

variable "project" {
  description = "The spec's project name."
  type        = string
}

variable "environment" {
  description = "The environment name (one Terraform state per environment)."
  type        = string

  # Resource names are "<project>-<environment>[-suffix]": an ALB name holds 32 characters.
  validation {
    condition     = length("${var.project}-${var.environment}") <= 32 && can(regex("^[a-z][a-z0-9]*(-[a-z0-9]+)*$", "${var.project}-${var.environment}"))
    error_message = "project-environment must be at most 32 characters: lowercase letters and digits, single hyphens, no hyphen at the end."
  }
}

variable "region" {
  description = "AWS region."
  type        = string
}

variable "domain" {
  description = "Public name of the gateway, e.g. obs.example.com."
  type        = string
}

variable "hosted_zone_id" {
  description = "Route53 zone for the domain's record and certificate validation; null to manage DNS elsewhere."
  type        = string
  default     = null
}

variable "certificate_arn" {
  description = "An existing ACM certificate for the domain; null to issue a DNS-validated one in hosted_zone_id."
  type        = string
  default     = null
}

variable "vpc_cidr" {
  description = "CIDR block of the VPC: a private /16 to /19 (the spec checks it)."
  type        = string

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0)) && tonumber(split("/", var.vpc_cidr)[1]) >= 16 && tonumber(split("/", var.vpc_cidr)[1]) <= 19
    error_message = "The VPC CIDR must be a /16 to /19 block."
  }
}

variable "service_namespace" {
  description = "Cloud Map private DNS namespace, e.g. observability.local."
  type        = string
}

variable "grafana_sub_path" {
  description = "The path Grafana is served under, through the gateway (e.g. /grafana)."
  type        = string
}

variable "log_retention_days" {
  description = "CloudWatch Logs retention for every service."
  type        = number
}

variable "ssm_prefix" {
  description = "SSM path under which obskit writes this environment's secrets (SecureString)."
  type        = string
}

variable "grafana_egress_ports" {
  description = "TCP ports besides 443 that Grafana may reach on the internet: the SMTP server's, and those of webhook URLs written in the spec."
  type        = list(number)
  default     = []

  validation {
    condition     = alltrue([for p in var.grafana_egress_ports : p >= 1 && p <= 65535 && floor(p) == p])
    error_message = "Each port must be a whole number from 1 to 65535."
  }
}

variable "buckets" {
  description = "Bucket name per purpose: loki_chunks, loki_ruler, mimir_blocks, mimir_ruler, mimir_alertmanager."
  type        = map(string)
}

variable "database" {
  description = "Aurora PostgreSQL for Grafana: engine version, instance class and count, database, user, the SSM parameter holding the password, and a snapshot to create the cluster from (null: empty)."
  type = object({
    engine_version     = string
    instance_class     = string
    instances          = number
    name               = string
    username           = string
    password_parameter = string
    restore_snapshot   = optional(string)
  })
}

variable "ecr_repositories" {
  description = "ECR repositories for the images obskit builds (one per component)."
  type        = list(string)
}

variable "config_hashes" {
  description = "Hash of each component's rendered configs (the same hashes compose labels its containers with)."
  type        = map(string)
}

variable "services" {
  description = "ECS services obskit renders: component, Fargate size, desired count, port, health path, buckets, container definitions."
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

  validation {
    condition     = alltrue([for s in var.services : s.ephemeral_storage_gib == null || (coalesce(s.ephemeral_storage_gib, 0) >= 21 && coalesce(s.ephemeral_storage_gib, 0) <= 200)])
    error_message = "Fargate ephemeral storage is 21 to 200 GiB (null for the default 20 GiB)."
  }
}

variable "extra_ssm_parameters" {
  description = "SSM parameters outside ssm_prefix that the spec references (ssm:/path secrets); the execution role may read these too."
  type        = list(string)
  default     = []
}

variable "alb_deletion_protection" {
  description = "Protect the load balancer from deletion (the spec's deletion_protection.load_balancer; turn off and apply before obskit promote --destroy)."
  type        = bool
  default     = true
}

variable "database_deletion_protection" {
  description = "Protect the Aurora cluster from deletion (the spec's deletion_protection.database)."
  type        = bool
  default     = true
}

variable "alb_access_logs" {
  description = "Write the ALB's access logs to a bucket of their own (alb_access_logs_bucket)."
  type        = bool
  default     = false
}

variable "alb_access_logs_bucket" {
  description = "Name of the ALB access-log bucket, created when alb_access_logs is on."
  type        = string
  default     = null
}

variable "wait_for_steady_state" {
  description = "Apply waits until every ECS service is stable (its tasks healthy), and fails if one is not."
  type        = bool
  default     = true
}

variable "ecs_exec" {
  description = "Allow ECS Exec into the tasks (adds the ssmmessages endpoint and the task-role permissions)."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
}

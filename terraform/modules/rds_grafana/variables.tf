variable "name" {
  description = "Prefix of every resource name."
  type        = string
}

variable "db_subnet_ids" {
  description = "Private subnets without a route out of the VPC."
  type        = list(string)
}

variable "security_group_id" {
  description = "The database's security group (Grafana may connect, nothing else)."
  type        = string
}

variable "engine_version" {
  description = "Aurora PostgreSQL version the cluster is created with (AWS applies later minor versions); keep its major equal to the postgres image used locally."
  type        = string
  default     = "17.5"
}

variable "instance_class" {
  description = "Instance class of the cluster's instances."
  type        = string
  default     = "db.t4g.medium"
}

variable "instances" {
  description = "Number of instances (1 writer, the rest readers)."
  type        = number
  default     = 1

  validation {
    condition     = var.instances >= 1 && var.instances <= 3
    error_message = "Between 1 and 3 instances."
  }
}

variable "database_name" {
  description = "Grafana's database."
  type        = string
  default     = "grafana"
}

variable "master_username" {
  description = "The user Grafana connects as."
  type        = string
  default     = "grafana"
}

variable "master_password_ssm_parameter" {
  description = "Name of the SSM SecureString parameter holding the password (obskit writes it before apply); read ephemerally, never stored in state."
  type        = string
}

variable "backup_retention_days" {
  description = "Days of automated backups."
  type        = number
  default     = 7
}

variable "deletion_protection" {
  description = "Protect the cluster from deletion."
  type        = bool
  default     = true
}

variable "restore_snapshot" {
  description = "A cluster snapshot to create the cluster from (e.g. the final snapshot of a destroyed environment); null for an empty database. Read at creation only."
  type        = string
  default     = null
}

variable "log_retention_days" {
  description = "Retention of the exported postgresql log's log group."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

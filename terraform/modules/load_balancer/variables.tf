variable "name" {
  description = "Name of the ALB (at most 32 characters, not ending in a hyphen)."
  type        = string

  validation {
    condition     = length(var.name) <= 32 && can(regex("^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$", var.name))
    error_message = "An ALB name has at most 32 letters, digits and hyphens, and does not start or end with a hyphen."
  }
}

variable "vpc_id" {
  description = "The VPC of the target groups."
  type        = string
}

variable "public_subnet_ids" {
  description = "Public subnets of the internet-facing ALB."
  type        = list(string)
}

variable "security_group_id" {
  description = "The ALB's security group."
  type        = string
}

variable "certificate_arn" {
  description = "ACM certificate of the HTTPS listener."
  type        = string
}

variable "deletion_protection" {
  description = "Protect the ALB from deletion."
  type        = bool
  default     = true
}

variable "access_logs_bucket" {
  description = "S3 bucket for ALB access logs; null to rely on the gateway's own access logs."
  type        = string
  default     = null
}

variable "idle_timeout" {
  description = "Idle timeout in seconds (long queries and pushes)."
  type        = number
  default     = 300
}

variable "ssl_policy" {
  description = "TLS policy of the HTTPS listener."
  type        = string
  default     = "ELBSecurityPolicy-TLS13-1-2-2021-06"
}

variable "targets" {
  description = "Target groups: port, protocol (HTTP or HTTPS), health path and matcher, path patterns and rule priority; exactly one is the default."
  type = map(object({
    port           = number
    protocol       = string
    health_path    = string
    health_matcher = optional(string, "200")
    path_patterns  = list(string)
    priority       = number
    default        = optional(bool, false)
  }))

  validation {
    condition     = length([for t in var.targets : t if t.default]) == 1
    error_message = "Exactly one target must be the default."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

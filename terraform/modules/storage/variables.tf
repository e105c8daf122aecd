variable "region" {
  description = "The AWS Region (whether Elastic Load Balancing delivers logs as a regional account or as a service principal)."
  type        = string
}

variable "buckets" {
  description = "Bucket name per purpose (loki_chunks, loki_ruler, mimir_blocks, mimir_ruler, mimir_alertmanager)."
  type        = map(string)
}

variable "noncurrent_version_expiration_days" {
  description = "Days before overwritten or deleted object versions expire."
  type        = number
  default     = 30
}

variable "force_destroy" {
  description = "Let Terraform delete non-empty buckets (data loss). Keep false."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

variable "access_logs_bucket" {
  description = "Name of a bucket for the ALB's access logs (SSE-S3, expiring), or null for none."
  type        = string
  default     = null
}

variable "access_logs_days" {
  description = "Days the ALB access logs are kept."
  type        = number
  default     = 90
}

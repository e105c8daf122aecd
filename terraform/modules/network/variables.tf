variable "name" {
  description = "Prefix of every resource name."
  type        = string
}

variable "cidr" {
  description = "CIDR block of the VPC."
  type        = string
  default     = "10.40.0.0/16"
}

variable "azs" {
  description = "The two availability zones the subnets span."
  type        = list(string)

  validation {
    condition     = length(var.azs) == 2
    error_message = "Give exactly two availability zones."
  }
}

variable "single_nat_gateway" {
  description = "One NAT gateway for both AZs (cheaper, not zone-redundant) instead of one per AZ."
  type        = bool
  default     = false
}

variable "flow_log_retention_days" {
  description = "Retention of the VPC flow logs in CloudWatch Logs."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

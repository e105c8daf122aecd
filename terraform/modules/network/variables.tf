variable "name" {
  description = "Prefix of every resource name."
  type        = string
}

variable "cidr" {
  description = "CIDR block of the VPC, /16 to /19 (public subnets are /24 of a /16, and an ALB needs at least a /27)."
  type        = string
  default     = "10.40.0.0/16"

  validation {
    condition     = can(cidrhost(var.cidr, 0)) && tonumber(split("/", var.cidr)[1]) >= 16 && tonumber(split("/", var.cidr)[1]) <= 19
    error_message = "The VPC CIDR must be a /16 to /19 block."
  }
}

variable "azs" {
  description = "The two availability zones the subnets span."
  type        = list(string)

  validation {
    condition     = length(var.azs) == 2 && length(distinct(var.azs)) == 2
    error_message = "Give exactly two availability zones."
  }
}

variable "interface_endpoints" {
  description = "AWS services the tasks reach through VPC interface endpoints (com.amazonaws.REGION.<name>)."
  type        = list(string)
  default     = ["ecr.api", "ecr.dkr", "ssm", "logs"]
}

variable "endpoint_security_group_id" {
  description = "Security group of the interface endpoints (HTTPS from the tasks)."
  type        = string
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

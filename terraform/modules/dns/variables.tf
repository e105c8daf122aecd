variable "domain" {
  description = "Public name of the gateway, e.g. obs.example.com."
  type        = string
}

variable "hosted_zone_id" {
  description = "Route53 zone holding the domain; null when DNS is managed elsewhere (then certificate_arn is required)."
  type        = string
  default     = null
}

variable "certificate_arn" {
  description = "An existing ACM certificate for the domain; null to issue one, DNS-validated in hosted_zone_id."
  type        = string
  default     = null
}

variable "alb_dns_name" {
  description = "DNS name of the ALB the domain points at."
  type        = string
}

variable "alb_zone_id" {
  description = "Route53 zone of the ALB's DNS name."
  type        = string
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

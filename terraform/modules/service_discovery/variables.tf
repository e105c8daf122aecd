variable "namespace" {
  description = "Private DNS namespace, e.g. observability.local."
  type        = string
}

variable "vpc_id" {
  description = "The VPC the namespace resolves in."
  type        = string
}

variable "services" {
  description = "Service names to register (loki, mimir-1, ..., otelcol, grafana, gateway)."
  type        = list(string)
}

variable "ttl" {
  description = "TTL of the A records, in seconds."
  type        = number
  default     = 10
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

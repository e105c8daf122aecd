variable "name" {
  description = "Prefix of every security group name."
  type        = string
}

variable "vpc_id" {
  description = "The VPC the groups belong to."
  type        = string
}

variable "s3_prefix_list_id" {
  description = "Prefix list of the S3 gateway endpoint: Loki and Mimir may reach S3 and nothing else outside."
  type        = string
}

variable "grafana_egress_ports" {
  description = "TCP ports besides 443 that Grafana may reach on the internet (an SMTP server's, for email contact points)."
  type        = list(number)
  default     = []
}

variable "ports" {
  description = "The ports of the stack (container ports, the same in compose)."
  type = object({
    gateway_https     = optional(number, 8443)
    gateway_http      = optional(number, 8080)
    gateway_status    = optional(number, 8081)
    grafana           = optional(number, 3000)
    loki_http         = optional(number, 3100)
    loki_grpc         = optional(number, 9095)
    mimir_http        = optional(number, 8080)
    mimir_grpc        = optional(number, 9095)
    memberlist        = optional(number, 7946)
    otelcol_grpc      = optional(number, 4317)
    otelcol_http      = optional(number, 4318)
    otelcol_health    = optional(number, 13133)
    otelcol_telemetry = optional(number, 8888)
    otelcol_syslog    = optional(number, 5514)
    postgres          = optional(number, 5432)
  })
  default = {}
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

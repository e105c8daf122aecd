# The flow table: every security group rule, one described entry each. Kept apart from
# the resources so that obskit's reachability test can evaluate it with terraform itself
# (this file and variables.tf need no provider).

locals {
  roles = {
    alb       = "The public ALB: HTTPS in from anywhere, out to the gateway only."
    gateway   = "The nginx gateway: from the ALB, the collector and Grafana; to Loki, Mimir, the collector and Grafana."
    grafana   = "Grafana: from the gateway; to the gateway (datasources), its database, and HTTPS (and SMTP if set) for notifications."
    loki      = "Loki: from the gateway and the collector (scrapes), gossip among replicas, S3 out."
    mimir     = "Mimir replicas: from the gateway and the collector (scrapes), gossip among replicas, S3 out."
    otelcol   = "The collector: from the gateway (OTLP intake, access-log syslog); to the gateway and the scrape targets."
    rds       = "Aurora for Grafana: from Grafana only."
    endpoints = "The VPC interface endpoints (ECR, SSM, CloudWatch Logs): HTTPS from the ECS tasks only."
  }

  # Descriptions (rules and groups) use only what EC2 accepts: a-zA-Z0-9, spaces and
  # ._-:/()#,@[]+=&;{}!$* (no apostrophes); tests/test_aws_constraints.py checks them.

  # Grafana's notifications beyond HTTPS on 443: its SMTP server, webhooks on other ports.
  grafana_egress = {
    for p in var.grafana_egress_ports : "grafana-out-cidr-0_0_0_0_0-${p}-tcp" => {
      role        = "grafana", ingress = false, kind = "cidr", peer = "0.0.0.0/0", port = p, protocol = "tcp",
      description = "notifications (SMTP, webhooks) on this port"
    } if p != 443
  }

  rules = merge(local.static_rules, local.grafana_egress)

  static_rules = {
    "alb-in-cidr-0_0_0_0_0-443-tcp"             = { role = "alb", ingress = true, kind = "cidr", peer = "0.0.0.0/0", port = 443, protocol = "tcp", description = "HTTPS from the internet" }
    "alb-in-cidr-0_0_0_0_0-80-tcp"              = { role = "alb", ingress = true, kind = "cidr", peer = "0.0.0.0/0", port = 80, protocol = "tcp", description = "HTTP from the internet, redirected to HTTPS" }
    "alb-out-sg-gateway-gateway_https-tcp"      = { role = "alb", ingress = false, kind = "sg", peer = "gateway", port = var.ports.gateway_https, protocol = "tcp", description = "to the gateway TLS listener" }
    "gateway-in-sg-alb-gateway_https-tcp"       = { role = "gateway", ingress = true, kind = "sg", peer = "alb", port = var.ports.gateway_https, protocol = "tcp", description = "from the ALB" }
    "gateway-in-sg-otelcol-gateway_https-tcp"   = { role = "gateway", ingress = true, kind = "sg", peer = "otelcol", port = var.ports.gateway_https, protocol = "tcp", description = "pushes from the collector" }
    "gateway-in-sg-grafana-gateway_https-tcp"   = { role = "gateway", ingress = true, kind = "sg", peer = "grafana", port = var.ports.gateway_https, protocol = "tcp", description = "queries from Grafana datasources" }
    "gateway-out-sg-loki-loki_http-tcp"         = { role = "gateway", ingress = false, kind = "sg", peer = "loki", port = var.ports.loki_http, protocol = "tcp", description = "to Loki" }
    "gateway-out-sg-mimir-mimir_http-tcp"       = { role = "gateway", ingress = false, kind = "sg", peer = "mimir", port = var.ports.mimir_http, protocol = "tcp", description = "to the Mimir replicas" }
    "gateway-out-sg-otelcol-otelcol_http-tcp"   = { role = "gateway", ingress = false, kind = "sg", peer = "otelcol", port = var.ports.otelcol_http, protocol = "tcp", description = "OTLP intake to the collector" }
    "gateway-out-sg-otelcol-otelcol_syslog-udp" = { role = "gateway", ingress = false, kind = "sg", peer = "otelcol", port = var.ports.otelcol_syslog, protocol = "udp", description = "access logs to the collector (syslog)" }
    "gateway-out-sg-grafana-grafana-tcp"        = { role = "gateway", ingress = false, kind = "sg", peer = "grafana", port = var.ports.grafana, protocol = "tcp", description = "to Grafana" }
    "grafana-in-sg-gateway-grafana-tcp"         = { role = "grafana", ingress = true, kind = "sg", peer = "gateway", port = var.ports.grafana, protocol = "tcp", description = "from the gateway" }
    "grafana-in-sg-otelcol-grafana-tcp"         = { role = "grafana", ingress = true, kind = "sg", peer = "otelcol", port = var.ports.grafana, protocol = "tcp", description = "metrics scrapes from the collector" }
    "grafana-out-sg-gateway-gateway_https-tcp"  = { role = "grafana", ingress = false, kind = "sg", peer = "gateway", port = var.ports.gateway_https, protocol = "tcp", description = "datasource queries through the gateway" }
    "grafana-out-sg-rds-postgres-tcp"           = { role = "grafana", ingress = false, kind = "sg", peer = "rds", port = var.ports.postgres, protocol = "tcp", description = "to its database" }
    "grafana-out-cidr-0_0_0_0_0-443-tcp"        = { role = "grafana", ingress = false, kind = "cidr", peer = "0.0.0.0/0", port = 443, protocol = "tcp", description = "notifications (Slack, PagerDuty, Teams, webhooks)" }
    "loki-in-sg-gateway-loki_http-tcp"          = { role = "loki", ingress = true, kind = "sg", peer = "gateway", port = var.ports.loki_http, protocol = "tcp", description = "from the gateway" }
    "loki-in-sg-otelcol-loki_http-tcp"          = { role = "loki", ingress = true, kind = "sg", peer = "otelcol", port = var.ports.loki_http, protocol = "tcp", description = "metrics scrapes from the collector" }
    "loki-in-self-x-loki_grpc-tcp"              = { role = "loki", ingress = true, kind = "self", peer = "", port = var.ports.loki_grpc, protocol = "tcp", description = "gRPC among Loki instances" }
    "loki-in-self-x-memberlist-tcp"             = { role = "loki", ingress = true, kind = "self", peer = "", port = var.ports.memberlist, protocol = "tcp", description = "memberlist gossip (TCP)" }
    "loki-in-self-x-memberlist-udp"             = { role = "loki", ingress = true, kind = "self", peer = "", port = var.ports.memberlist, protocol = "udp", description = "memberlist gossip (UDP)" }
    "loki-out-self-x-loki_grpc-tcp"             = { role = "loki", ingress = false, kind = "self", peer = "", port = var.ports.loki_grpc, protocol = "tcp", description = "gRPC among Loki instances" }
    "loki-out-self-x-memberlist-tcp"            = { role = "loki", ingress = false, kind = "self", peer = "", port = var.ports.memberlist, protocol = "tcp", description = "memberlist gossip (TCP)" }
    "loki-out-self-x-memberlist-udp"            = { role = "loki", ingress = false, kind = "self", peer = "", port = var.ports.memberlist, protocol = "udp", description = "memberlist gossip (UDP)" }
    "loki-out-prefix-x-443-tcp"                 = { role = "loki", ingress = false, kind = "prefix", peer = "", port = 443, protocol = "tcp", description = "S3 through the gateway endpoint: ECR image layers, and its data" }
    "mimir-in-sg-gateway-mimir_http-tcp"        = { role = "mimir", ingress = true, kind = "sg", peer = "gateway", port = var.ports.mimir_http, protocol = "tcp", description = "from the gateway" }
    "mimir-in-sg-otelcol-mimir_http-tcp"        = { role = "mimir", ingress = true, kind = "sg", peer = "otelcol", port = var.ports.mimir_http, protocol = "tcp", description = "metrics scrapes from the collector" }
    "mimir-in-self-x-mimir_grpc-tcp"            = { role = "mimir", ingress = true, kind = "self", peer = "", port = var.ports.mimir_grpc, protocol = "tcp", description = "gRPC among replicas" }
    "mimir-in-self-x-memberlist-tcp"            = { role = "mimir", ingress = true, kind = "self", peer = "", port = var.ports.memberlist, protocol = "tcp", description = "memberlist gossip (TCP)" }
    "mimir-in-self-x-memberlist-udp"            = { role = "mimir", ingress = true, kind = "self", peer = "", port = var.ports.memberlist, protocol = "udp", description = "memberlist gossip (UDP)" }
    "mimir-out-self-x-mimir_grpc-tcp"           = { role = "mimir", ingress = false, kind = "self", peer = "", port = var.ports.mimir_grpc, protocol = "tcp", description = "gRPC among replicas" }
    "mimir-out-self-x-memberlist-tcp"           = { role = "mimir", ingress = false, kind = "self", peer = "", port = var.ports.memberlist, protocol = "tcp", description = "memberlist gossip (TCP)" }
    "mimir-out-self-x-memberlist-udp"           = { role = "mimir", ingress = false, kind = "self", peer = "", port = var.ports.memberlist, protocol = "udp", description = "memberlist gossip (UDP)" }
    "mimir-out-prefix-x-443-tcp"                = { role = "mimir", ingress = false, kind = "prefix", peer = "", port = 443, protocol = "tcp", description = "S3 through the gateway endpoint: ECR image layers, and its data" }
    "otelcol-in-sg-gateway-otelcol_http-tcp"    = { role = "otelcol", ingress = true, kind = "sg", peer = "gateway", port = var.ports.otelcol_http, protocol = "tcp", description = "OTLP intake from the gateway" }
    "otelcol-in-sg-gateway-otelcol_syslog-udp"  = { role = "otelcol", ingress = true, kind = "sg", peer = "gateway", port = var.ports.otelcol_syslog, protocol = "udp", description = "gateway access logs (syslog)" }
    "otelcol-out-sg-gateway-gateway_https-tcp"  = { role = "otelcol", ingress = false, kind = "sg", peer = "gateway", port = var.ports.gateway_https, protocol = "tcp", description = "pushes through the gateway" }
    "otelcol-out-sg-loki-loki_http-tcp"         = { role = "otelcol", ingress = false, kind = "sg", peer = "loki", port = var.ports.loki_http, protocol = "tcp", description = "scrapes Loki metrics" }
    "otelcol-out-sg-mimir-mimir_http-tcp"       = { role = "otelcol", ingress = false, kind = "sg", peer = "mimir", port = var.ports.mimir_http, protocol = "tcp", description = "scrapes Mimir metrics" }
    "otelcol-out-sg-grafana-grafana-tcp"        = { role = "otelcol", ingress = false, kind = "sg", peer = "grafana", port = var.ports.grafana, protocol = "tcp", description = "scrapes Grafana metrics" }
    "otelcol-in-self-x-otelcol_telemetry-tcp"   = { role = "otelcol", ingress = true, kind = "self", peer = "", port = var.ports.otelcol_telemetry, protocol = "tcp", description = "its own metrics, scraped by name (another task of the service during a deploy)" }
    "otelcol-out-self-x-otelcol_telemetry-tcp"  = { role = "otelcol", ingress = false, kind = "self", peer = "", port = var.ports.otelcol_telemetry, protocol = "tcp", description = "scrapes its own metrics by name" }
    "rds-in-sg-grafana-postgres-tcp"            = { role = "rds", ingress = true, kind = "sg", peer = "grafana", port = var.ports.postgres, protocol = "tcp", description = "from Grafana only" }

    # On Fargate the image pull, the secrets and the awslogs driver use the task's own
    # network interface: every task reaches ECR, SSM and CloudWatch Logs through the VPC
    # interface endpoints, and ECR's image layers (S3) through the gateway endpoint.
    "gateway-out-sg-endpoints-443-tcp" = { role = "gateway", ingress = false, kind = "sg", peer = "endpoints", port = 443, protocol = "tcp", description = "AWS APIs through the VPC interface endpoints: ECR, SSM, CloudWatch Logs" }
    "endpoints-in-sg-gateway-443-tcp"  = { role = "endpoints", ingress = true, kind = "sg", peer = "gateway", port = 443, protocol = "tcp", description = "AWS API calls from the gateway tasks" }
    "grafana-out-sg-endpoints-443-tcp" = { role = "grafana", ingress = false, kind = "sg", peer = "endpoints", port = 443, protocol = "tcp", description = "AWS APIs through the VPC interface endpoints: ECR, SSM, CloudWatch Logs" }
    "endpoints-in-sg-grafana-443-tcp"  = { role = "endpoints", ingress = true, kind = "sg", peer = "grafana", port = 443, protocol = "tcp", description = "AWS API calls from the grafana tasks" }
    "loki-out-sg-endpoints-443-tcp"    = { role = "loki", ingress = false, kind = "sg", peer = "endpoints", port = 443, protocol = "tcp", description = "AWS APIs through the VPC interface endpoints: ECR, SSM, CloudWatch Logs" }
    "endpoints-in-sg-loki-443-tcp"     = { role = "endpoints", ingress = true, kind = "sg", peer = "loki", port = 443, protocol = "tcp", description = "AWS API calls from the loki tasks" }
    "mimir-out-sg-endpoints-443-tcp"   = { role = "mimir", ingress = false, kind = "sg", peer = "endpoints", port = 443, protocol = "tcp", description = "AWS APIs through the VPC interface endpoints: ECR, SSM, CloudWatch Logs" }
    "endpoints-in-sg-mimir-443-tcp"    = { role = "endpoints", ingress = true, kind = "sg", peer = "mimir", port = 443, protocol = "tcp", description = "AWS API calls from the mimir tasks" }
    "otelcol-out-sg-endpoints-443-tcp" = { role = "otelcol", ingress = false, kind = "sg", peer = "endpoints", port = 443, protocol = "tcp", description = "AWS APIs through the VPC interface endpoints: ECR, SSM, CloudWatch Logs" }
    "endpoints-in-sg-otelcol-443-tcp"  = { role = "endpoints", ingress = true, kind = "sg", peer = "otelcol", port = 443, protocol = "tcp", description = "AWS API calls from the otelcol tasks" }
    "gateway-out-prefix-x-443-tcp"     = { role = "gateway", ingress = false, kind = "prefix", peer = "", port = 443, protocol = "tcp", description = "S3 through the gateway endpoint: ECR image layers" }
    "grafana-out-prefix-x-443-tcp"     = { role = "grafana", ingress = false, kind = "prefix", peer = "", port = 443, protocol = "tcp", description = "S3 through the gateway endpoint: ECR image layers" }
    "otelcol-out-prefix-x-443-tcp"     = { role = "otelcol", ingress = false, kind = "prefix", peer = "", port = 443, protocol = "tcp", description = "S3 through the gateway endpoint: ECR image layers" }
  }
}

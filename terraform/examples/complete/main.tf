# The complete example, and the harness obskit's tests validate: the root module with the
# variables `obskit promote` would render for a small environment. Real runs use the
# rendered .obskit/promote/<env>/terraform.tfvars.json instead of these literals.

module "obskit" {
  source = "../.."

  project            = "obskit"
  environment        = "example"
  region             = "eu-west-1"
  domain             = "obs.example.com"
  hosted_zone_id     = "Z0123456789ABCDEFGHIJ"
  vpc_cidr           = "10.40.0.0/16"
  service_namespace  = "observability.local"
  grafana_sub_path   = "/grafana"
  log_retention_days = 30
  ssm_prefix         = "/obskit/obskit/example"

  buckets = {
    loki_chunks        = "acme-obs-example-loki-chunks"
    loki_ruler         = "acme-obs-example-loki-ruler"
    mimir_blocks       = "acme-obs-example-mimir-blocks"
    mimir_ruler        = "acme-obs-example-mimir-ruler"
    mimir_alertmanager = "acme-obs-example-mimir-alertmanager"
  }

  database = {
    engine_version     = "17.5"
    instance_class     = "db.t4g.medium"
    instances          = 1
    name               = "grafana"
    username           = "grafana"
    password_parameter = "/obskit/obskit/example/postgres-password"
  }

  ecr_repositories = ["obskit-example/gateway", "obskit-example/grafana", "obskit-example/loki", "obskit-example/mimir", "obskit-example/otelcol"]
  config_hashes    = { gateway = "0123456789abcdef" }

  alb_deletion_protection      = true
  database_deletion_protection = true
  alb_access_logs              = true
  alb_access_logs_bucket       = "acme-obs-example-alb-logs"
  wait_for_steady_state        = true
  ecs_exec                     = false

  services = {
    gateway = {
      component             = "gateway"
      cpu                   = 512
      memory                = 1024
      desired_count         = 2
      max_count             = 4
      cpu_target_percent    = 60
      secrets_version       = "0123456789abcdef"
      port                  = 8443
      health_path           = "/nginx-health"
      buckets               = []
      container_definitions = jsonencode([{ name = "gateway", image = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/obskit-example/gateway:cfg-0123456789abcdef", essential = true }])
    }
  }
}

output "url" {
  description = "The gateway's public URL."
  value       = module.obskit.url
}

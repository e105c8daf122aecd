# obskit on AWS: the root composition. `obskit promote` renders the variables from the
# spec; see DESIGN.md for who owns what.

provider "aws" {
  region = var.region

  default_tags {
    tags = merge({
      "obskit:project"     = var.project
      "obskit:environment" = var.environment
      "managed-by"         = "obskit"
    }, var.tags)
  }
}

# Regular availability zones only: opted-in Local Zones and Wavelength Zones (which sort
# first by name) never get the subnets.
data "aws_availability_zones" "available" {
  # checkov:skip=CKV_AWS_394:Zones are filtered to regular opted-in AZs and only the first two by name are used (slice); zone names are region-specific, so obskit cannot list them, and the subnets' zones are fixed once created.
  state = "available"

  filter {
    name   = "opt-in-status"
    values = ["opt-in-not-required"]
  }

  filter {
    name   = "zone-type"
    values = ["availability-zone"]
  }
}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  name = "${var.project}-${var.environment}"
  azs  = slice(data.aws_availability_zones.available.names, 0, 2)
}

module "network" {
  source = "./modules/network"

  name                       = local.name
  cidr                       = var.vpc_cidr
  azs                        = local.azs
  interface_endpoints        = local.interface_endpoints
  endpoint_security_group_id = module.security_groups.endpoints
}

module "security_groups" {
  source = "./modules/security_groups"

  name                 = local.name
  vpc_id               = module.network.vpc_id
  s3_prefix_list_id    = module.network.s3_prefix_list_id
  grafana_egress_ports = var.grafana_egress_ports
}

module "dns" {
  source = "./modules/dns"

  domain          = var.domain
  hosted_zone_id  = var.hosted_zone_id
  certificate_arn = var.certificate_arn
  alb_dns_name    = module.load_balancer.dns_name
  alb_zone_id     = module.load_balancer.zone_id
}

module "load_balancer" {
  source = "./modules/load_balancer"

  name                = local.name
  vpc_id              = module.network.vpc_id
  public_subnet_ids   = module.network.public_subnet_ids
  security_group_id   = module.security_groups.alb
  certificate_arn     = module.dns.certificate_arn
  deletion_protection = var.alb_deletion_protection
  access_logs_bucket  = var.alb_access_logs ? module.storage.access_logs_bucket : null

  # Everything goes through the gateway (Grafana too, under its sub-path), as locally.
  # The ALB re-encrypts to the gateway's TLS listener and checks its real health path.
  targets = {
    gateway = {
      port          = var.services["gateway"].port
      protocol      = "HTTPS"
      health_path   = var.services["gateway"].health_path
      path_patterns = ["/*"]
      priority      = 100
      default       = true
    }
  }
}

module "storage" {
  source = "./modules/storage"

  region             = var.region
  buckets            = var.buckets
  access_logs_bucket = var.alb_access_logs ? var.alb_access_logs_bucket : null
}

module "ecr" {
  source = "./modules/ecr"

  repositories = var.ecr_repositories
}

module "service_discovery" {
  source = "./modules/service_discovery"

  namespace = var.service_namespace
  vpc_id    = module.network.vpc_id
  services  = keys(var.services)
}

module "rds" {
  source = "./modules/rds_grafana"

  name                          = local.name
  db_subnet_ids                 = module.network.db_subnet_ids
  security_group_id             = module.security_groups.rds
  engine_version                = var.database.engine_version
  instance_class                = var.database.instance_class
  instances                     = var.database.instances
  database_name                 = var.database.name
  master_username               = var.database.username
  master_password_ssm_parameter = var.database.password_parameter
  deletion_protection           = var.database_deletion_protection
  restore_snapshot              = var.database.restore_snapshot
  log_retention_days            = var.log_retention_days
}

module "ecs" {
  source = "./modules/ecs"

  name                     = local.name
  region                   = var.region
  subnet_ids               = module.network.ecs_subnet_ids
  services                 = var.services
  security_group_ids       = module.security_groups.ids
  service_registry_arns    = module.service_discovery.service_arns
  load_balanced            = { gateway = module.load_balancer.target_group_arns["gateway"] }
  ssm_parameter_arn_prefix = "arn:${data.aws_partition.current.partition}:ssm:${var.region}:${data.aws_caller_identity.current.account_id}:parameter"
  ssm_prefix               = var.ssm_prefix
  extra_ssm_parameters     = var.extra_ssm_parameters
  wait_for_steady_state    = var.wait_for_steady_state
  enable_execute_command   = var.ecs_exec
  outputs                  = { grafana_database_endpoint = "${module.rds.endpoint}:${module.rds.port}" }
  bucket_arns              = { for key, bucket in module.storage.bucket_names : bucket => module.storage.bucket_arns[key] }
  storage_kms_key_arn      = module.storage.kms_key_arn
  log_group_prefix         = "/obskit/${var.project}/${var.environment}"
  log_retention_days       = var.log_retention_days
  # What Loki and Mimir need while they stop and flush to S3: every ECS service is
  # destroyed (and its tasks stopped) before these.
  stop_dependencies = concat(
    module.security_groups.ingester_rule_ids,
    module.network.s3_path_ids,
    values(module.storage.bucket_policy_ids),
  )
}

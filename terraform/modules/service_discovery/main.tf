# Cloud Map: a private DNS namespace where each ECS service registers its tasks' addresses
# as <service>.<namespace>, the names the binding table gives the components.

resource "aws_service_discovery_private_dns_namespace" "this" {
  name        = var.namespace
  description = "obskit service discovery"
  vpc         = var.vpc_id
  tags        = var.tags
}

resource "aws_service_discovery_service" "this" {
  for_each = toset(var.services)

  name = each.key

  dns_config {
    namespace_id   = aws_service_discovery_private_dns_namespace.this.id
    routing_policy = "MULTIVALUE"

    dns_records {
      type = "A"
      ttl  = var.ttl
    }
  }

  # ECS reports each task's health to Cloud Map (failure_threshold is deprecated in
  # provider 6.x and always 1).
  health_check_custom_config {}

  # Cloud Map refuses to delete a service that still has registered instances
  # (ResourceInUse). ECS deregisters a service's tasks as they stop, but a task that was
  # never deregistered (a failed stop) would block the destroy: leftovers are deregistered.
  force_destroy = true

  tags = var.tags
}

# What the resources of this module are built from (kept apart so that tests can evaluate
# them with `terraform console` and the variables alone).

locals {
  # The placeholders obskit writes into container definitions. Only the services whose
  # definitions name a deploy-time output (Grafana: the database endpoint) read var.outputs,
  # in resources of their own: Terraform orders by resource, so a reference here would make
  # every task definition (and service) wait for Aurora.
  output_placeholder = "__OBSKIT_OUTPUT_"
  needs_outputs      = { for name, svc in var.services : name => svc if strcontains(svc.container_definitions, local.output_placeholder) }
  plain              = { for name, svc in var.services : name => svc if !strcontains(svc.container_definitions, local.output_placeholder) }
  definitions = {
    for name, svc in local.plain : name => replace(svc.container_definitions, "__OBSKIT_SSM_ARN__", var.ssm_parameter_arn_prefix)
  }
  definitions_with_outputs = {
    for name, svc in local.needs_outputs : name => replace(
      replace(svc.container_definitions, "__OBSKIT_SSM_ARN__", var.ssm_parameter_arn_prefix),
      "__OBSKIT_OUTPUT_grafana_database_endpoint__", var.outputs["grafana_database_endpoint"]
    )
  }
  with_buckets = { for name, svc in var.services : name => svc if length(svc.buckets) > 0 }
  # Services that scale between desired_count and max_count on CPU; the others run exactly
  # desired_count tasks. Apply leaves a scaled service's current count alone.
  scaled = { for name, svc in local.plain : name => svc if svc.max_count > svc.desired_count && !contains(var.rolled_components, svc.component) }
  fixed  = { for name, svc in local.plain : name => svc if svc.max_count <= svc.desired_count && !contains(var.rolled_components, svc.component) }
  # Mimir's replicas: Terraform registers their task definitions but leaves the services'
  # task_definition alone; `obskit promote --apply` then rolls them one after another, each
  # steady before the next (replacing all three at once empties Mimir's ring for seconds:
  # DESIGN.md, "A Mimir deploy, measured"). One task each: a replica is one ring identity.
  rolled = { for name, svc in local.plain : name => svc if contains(var.rolled_components, svc.component) }
}

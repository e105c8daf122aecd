# The AWS services every task reaches through VPC interface endpoints (see DESIGN.md,
# "Who may talk to whom"): image pulls (ECR api and dkr; the layers come from S3 through the
# gateway endpoint), secrets (SSM), logs (CloudWatch Logs), and ECS Exec's channel when it
# is on. Kept apart, with variables only, so that obskit's reachability test can evaluate
# it with terraform itself.

locals {
  interface_endpoints = concat(["ecr.api", "ecr.dkr", "ssm", "logs"], var.ecs_exec ? ["ssmmessages"] : [])
}

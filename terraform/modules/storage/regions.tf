# The Regions where Elastic Load Balancing delivers access logs as a regional AWS account
# (those available before August 2022), as listed in "Enable access logs for your
# Application Load Balancer". In every other Region only the service principal
# logdelivery.elasticloadbalancing.amazonaws.com is granted, and data.aws_elb_service_account
# fails ("unsupported AWS Region"). Kept apart, with variables only, so that obskit's tests
# can evaluate it with terraform itself.
# https://docs.aws.amazon.com/elasticloadbalancing/latest/application/enable-access-logging.html

locals {
  elb_account_regions = [
    "us-east-1", "us-east-2", "us-west-1", "us-west-2",
    "af-south-1", "ap-east-1", "ap-south-1", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3",
    "ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "ca-central-1",
    "eu-central-1", "eu-west-1", "eu-west-2", "eu-west-3", "eu-south-1", "eu-north-1",
    "me-south-1", "sa-east-1", "us-gov-east-1", "us-gov-west-1", "cn-north-1", "cn-northwest-1",
  ]
  elb_account_region = contains(local.elb_account_regions, var.region)
}

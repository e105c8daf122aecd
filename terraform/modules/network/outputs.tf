output "vpc_id" {
  description = "ID of the VPC."
  value       = aws_vpc.this.id
}

output "vpc_cidr" {
  description = "CIDR block of the VPC."
  value       = aws_vpc.this.cidr_block
}

output "public_subnet_ids" {
  description = "Public subnets (ALB, NAT)."
  value       = aws_subnet.public[*].id
}

output "ecs_subnet_ids" {
  description = "Private subnets for ECS tasks."
  value       = aws_subnet.ecs[*].id
}

output "db_subnet_ids" {
  description = "Private subnets for the database, without a route out of the VPC."
  value       = aws_subnet.db[*].id
}

output "s3_prefix_list_id" {
  description = "Prefix list of the S3 gateway endpoint, for security group rules."
  value       = aws_vpc_endpoint.s3.prefix_list_id
}

output "s3_path_ids" {
  description = "The S3 gateway endpoint and the ECS subnets' route table associations: the path of the tasks to S3 (for ordering: Loki and Mimir flush through it when they stop)."
  value       = concat([aws_vpc_endpoint.s3.id], aws_route_table_association.ecs[*].id)
}

output "alb_subnet_cidrs" {
  description = "CIDR blocks of the public subnets, where the ALB's nodes are (the gateway trusts X-Forwarded-For from them only)."
  value       = aws_subnet.public[*].cidr_block
}

output "nat_public_ips" {
  description = "Public addresses the tasks reach the internet from."
  value       = aws_eip.nat[*].public_ip
}

output "interface_endpoints" {
  description = "Interface endpoint ID per AWS service name (ecr.api, ecr.dkr, ssm, logs, ...)."
  value       = { for k, e in aws_vpc_endpoint.interface : k => e.id }
}

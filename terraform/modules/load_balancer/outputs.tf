output "arn" {
  description = "ARN of the ALB."
  value       = aws_lb.this.arn
}

output "dns_name" {
  description = "DNS name of the ALB."
  value       = aws_lb.this.dns_name
}

output "zone_id" {
  description = "Route53 zone of the ALB's DNS name (for alias records)."
  value       = aws_lb.this.zone_id
}

output "https_listener_arn" {
  description = "ARN of the HTTPS listener."
  value       = aws_lb_listener.https.arn
}

output "target_group_arns" {
  description = "Target group ARN per target key, available once the listeners forward to them: ECS refuses a service whose target group no listener uses, and the HTTPS listener waits for the certificate's validation."
  value       = { for k, tg in aws_lb_target_group.this : k => tg.arn }
  depends_on  = [aws_lb_listener.https, aws_lb_listener_rule.this]
}

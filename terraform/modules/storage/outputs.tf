output "bucket_names" {
  description = "Bucket name per purpose."
  value       = { for k, b in aws_s3_bucket.this : k => b.bucket }
}

output "bucket_arns" {
  description = "Bucket ARN per purpose."
  value       = { for k, b in aws_s3_bucket.this : k => b.arn }
}

output "kms_key_arn" {
  description = "The key that encrypts every bucket (task roles need kms:Decrypt and kms:GenerateDataKey on it)."
  value       = aws_kms_key.this.arn
}

output "access_logs_bucket" {
  description = "The ALB access-log bucket (null when there is none), available once its policy lets Elastic Load Balancing write: the ALB's access_logs attribute is refused before."
  value       = one(aws_s3_bucket.access_logs[*].bucket)
  depends_on  = [aws_s3_bucket_policy.access_logs, aws_s3_bucket_ownership_controls.access_logs, aws_s3_bucket_server_side_encryption_configuration.access_logs]
}

output "bucket_policy_ids" {
  description = "Bucket policy ID per purpose (for ordering: the services that use a bucket go first on destroy)."
  value       = { for k, p in aws_s3_bucket_policy.this : k => p.id }
}

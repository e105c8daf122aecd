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
  description = "The ALB access-log bucket (null when there is none)."
  value       = one(aws_s3_bucket.access_logs[*].bucket)
}

# The buckets of Loki and Mimir: versioned, encrypted with the module's KMS key, never
# public, TLS only, with lifecycle rules for incomplete uploads and old versions.
# Retention of the data itself is Loki's and Mimir's job (compactors), not S3's.

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

data "aws_iam_policy_document" "key" {
  # checkov:skip=CKV_AWS_109:The account root may manage the key: the standard key policy statement that keeps the key administrable through IAM.
  # checkov:skip=CKV_AWS_111:The account root may use the key: the standard key policy statement; task roles get kms:Decrypt/GenerateDataKey through IAM.
  # checkov:skip=CKV_AWS_356:A key policy's resource is always the key itself ("*" within a key policy).
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }
}

resource "aws_kms_key" "this" {
  description             = "obskit Loki and Mimir data"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.key.json
  tags                    = var.tags
}

resource "aws_s3_bucket" "this" {
  for_each = var.buckets

  # checkov:skip=CKV_AWS_18:Server access logs would need another bucket per environment; object access is by the task roles only and CloudTrail records the API calls.
  # checkov:skip=CKV_AWS_144:Cross-region replication doubles storage cost; Loki and Mimir data are versioned and recoverable within the region. Enable it per organisation policy.
  # checkov:skip=CKV2_AWS_62:No consumer needs event notifications; Loki and Mimir poll their buckets.
  # checkov:skip=CKV_AWS_21:Versioning is aws_s3_bucket_versioning.this[each.key]; the module's own scan passes, but checkov's graph through examples/complete links only one for_each key.
  # checkov:skip=CKV_AWS_145:KMS encryption is aws_s3_bucket_server_side_encryption_configuration.this[each.key]; checkov's graph through examples/complete links only one for_each key.
  # checkov:skip=CKV2_AWS_6:The public access block is aws_s3_bucket_public_access_block.this[each.key]; checkov's graph through examples/complete links only one for_each key.
  # checkov:skip=CKV2_AWS_61:The lifecycle is aws_s3_bucket_lifecycle_configuration.this[each.key]; checkov's graph through examples/complete links only one for_each key.
  bucket        = each.value
  force_destroy = var.force_destroy
  tags          = merge(var.tags, { Name = each.value, Purpose = each.key })
}

resource "aws_s3_bucket_ownership_controls" "this" {
  for_each = aws_s3_bucket.this

  bucket = each.value.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "this" {
  for_each = aws_s3_bucket.this

  bucket                  = each.value.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "this" {
  for_each = aws_s3_bucket.this

  bucket = each.value.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  for_each = aws_s3_bucket.this

  bucket = each.value.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.this.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "this" {
  for_each = aws_s3_bucket.this

  bucket = each.value.id

  rule {
    id     = "abort-incomplete-uploads"
    status = "Enabled"
    filter {}
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  rule {
    id     = "expire-old-versions"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_expiration_days
    }
  }

  depends_on = [aws_s3_bucket_versioning.this]
}

data "aws_iam_policy_document" "tls_only" {
  for_each = aws_s3_bucket.this

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [each.value.arn, "${each.value.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "this" {
  for_each = aws_s3_bucket.this

  bucket     = each.value.id
  policy     = data.aws_iam_policy_document.tls_only[each.key].json
  depends_on = [aws_s3_bucket_public_access_block.this]
}

# -- ALB access logs (when the spec turns them on) --------------------------------------
# A bucket of its own: ALB log delivery supports SSE-S3 only (no KMS key), and the logs
# expire on their own.

# Only in the Regions that have a regional ELB account (see regions.tf): elsewhere the data
# source fails the plan with "unsupported AWS Region".
data "aws_elb_service_account" "this" {
  count = var.access_logs_bucket != null && local.elb_account_region ? 1 : 0
}

resource "aws_s3_bucket" "access_logs" {
  count = var.access_logs_bucket == null ? 0 : 1

  # checkov:skip=CKV_AWS_18:This bucket is itself the access-log destination; logging it would need yet another bucket.
  # checkov:skip=CKV_AWS_144:Access logs are operational data kept for access_logs_days; cross-region replication is not worth doubling them.
  # checkov:skip=CKV_AWS_145:ALB log delivery supports SSE-S3 only; a KMS key is refused by Elastic Load Balancing.
  # checkov:skip=CKV2_AWS_62:No consumer needs event notifications for access logs.
  # checkov:skip=CKV_AWS_21:Log objects are written once and expire; versioning would only keep deleted logs longer.
  bucket        = var.access_logs_bucket
  force_destroy = var.force_destroy
  tags          = merge(var.tags, { Name = var.access_logs_bucket, Purpose = "alb_access_logs" })
}

resource "aws_s3_bucket_ownership_controls" "access_logs" {
  count = length(aws_s3_bucket.access_logs)

  bucket = aws_s3_bucket.access_logs[0].id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "access_logs" {
  count = length(aws_s3_bucket.access_logs)

  bucket                  = aws_s3_bucket.access_logs[0].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "access_logs" {
  count = length(aws_s3_bucket.access_logs)

  bucket = aws_s3_bucket.access_logs[0].id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "access_logs" {
  count = length(aws_s3_bucket.access_logs)

  bucket = aws_s3_bucket.access_logs[0].id

  rule {
    id     = "expire-access-logs"
    status = "Enabled"
    filter {}
    expiration {
      days = var.access_logs_days
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
}

# Elastic Load Balancing writes under alb/AWSLogs/<account>/: the regional ELB account in
# Regions opened before August 2022, the log-delivery service principal in all of them (the
# only grantee in the newer ones).
data "aws_iam_policy_document" "access_logs" {
  count = length(aws_s3_bucket.access_logs)

  dynamic "statement" {
    for_each = data.aws_elb_service_account.this
    content {
      sid       = "ElbLogDelivery"
      actions   = ["s3:PutObject"]
      resources = ["${aws_s3_bucket.access_logs[0].arn}/alb/AWSLogs/${data.aws_caller_identity.current.account_id}/*"]
      principals {
        type        = "AWS"
        identifiers = [statement.value.arn]
      }
    }
  }
  statement {
    sid       = "ElbLogDeliveryService"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.access_logs[0].arn}/alb/AWSLogs/${data.aws_caller_identity.current.account_id}/*"]
    principals {
      type        = "Service"
      identifiers = ["logdelivery.elasticloadbalancing.amazonaws.com"]
    }
  }
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.access_logs[0].arn, "${aws_s3_bucket.access_logs[0].arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "access_logs" {
  count = length(aws_s3_bucket.access_logs)

  bucket     = aws_s3_bucket.access_logs[0].id
  policy     = data.aws_iam_policy_document.access_logs[0].json
  depends_on = [aws_s3_bucket_public_access_block.access_logs]
}

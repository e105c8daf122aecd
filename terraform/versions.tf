terraform {
  # 1.11: write-only arguments and ephemeral resources keep the database password out of state.
  required_version = ">= 1.11"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 6.0, < 7.0"
    }
  }

  # One state per environment, in S3 with native locking. obskit writes the settings
  # (bucket, key, region, use_lockfile, encrypt) to backend.hcl: terraform init -backend-config=backend.hcl
  backend "s3" {}
}

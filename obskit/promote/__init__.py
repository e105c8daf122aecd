"""`obskit promote`: the configs proven locally, deployed to AWS by Terraform.

- ``components``: what each component runs (image, config paths, command, ports, health);
- ``images``: one image per component, FROM the pinned upstream image, with the rendered
  config files added, tagged by content hash;
- ``ecs``: the ECS container definitions and the Terraform variables (tfvars JSON);
- ``safety``: refusing plans that destroy or replace stateful resources;
- ``preflight``: everything that must hold before Terraform runs;
- ``cloud``: SSM, S3 (state) and ECR calls through boto3;
- ``run``: the promote flow itself.
"""

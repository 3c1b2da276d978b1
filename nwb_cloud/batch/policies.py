"""IAM for the conversion jobs: each role gets what its user needs and nothing more.

* job role (assumed by the containers): read and write objects under the destination prefix only, where
  the outputs, the staging area and the run folder all live (a fleet's: under each of its buckets' prefixes);
* execution role (used by ECS to start a container): read exactly the run's secrets, write to the
  deployment's log group, pull the image if it is in ECR;
* instance role and Batch service role: AWS's managed policies for those services
  (``AmazonEC2ContainerServiceforEC2Role``, ``AWSBatchServiceRole``), which define what the ECS agent and
  Batch itself need and which AWS keeps current.

NeuroConv's role instead attaches ``AmazonDynamoDBFullAccess`` and ``CloudWatchFullAccess``.
"""

from __future__ import annotations

import re

VERSION = "2012-10-17"
INSTANCE_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role"
BATCH_SERVICE_POLICY = "arn:aws:iam::aws:policy/service-role/AWSBatchServiceRole"
_ECR_IMAGE = re.compile(r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com/(?P<repo>[^:@]+)")


def trust(service: str) -> dict:
    statement = {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
    return {"Version": VERSION, "Statement": [statement]}


def job_policy(bucket: str, prefix: str, *more: tuple[str, str]) -> dict:
    """Read and write objects under ``bucket/prefix`` (and each further ``(bucket, prefix)``), list only there."""
    statements = []
    for index, (name, path) in enumerate([(bucket, prefix), *more]):
        objects = f"arn:aws:s3:::{name}/{path}/*" if path else f"arn:aws:s3:::{name}/*"
        listing = {"s3:prefix": [f"{path}/*", path]} if path else {"s3:prefix": ["*"]}
        suffix = str(index) if index else ""
        statements += [
            {
                "Sid": f"ListTheDestinationPrefix{suffix}",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": f"arn:aws:s3:::{name}",
                "Condition": {"StringLike": listing},
            },
            {
                "Sid": f"ReadWriteUnderTheDestinationPrefix{suffix}",
                "Effect": "Allow",
                "Action": [
                    "s3:GetObject",
                    "s3:PutObject",
                    "s3:DeleteObject",
                    "s3:AbortMultipartUpload",
                    "s3:ListMultipartUploadParts",
                ],
                "Resource": objects,
            },
        ]
    return {"Version": VERSION, "Statement": statements}


def execution_policy(secret_arns: list[str], log_group_arn: str, image: str) -> dict:
    statements = [
        {
            "Sid": "WriteTheDeploymentLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": f"{log_group_arn}:*",
        }
    ]
    if secret_arns:
        statements.append(
            {
                "Sid": "ReadTheRunSecrets",
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": sorted(secret_arns),
            }
        )
    ecr = _ECR_IMAGE.match(image)
    if ecr:
        repository = f"arn:aws:ecr:{ecr['region']}:{ecr['account']}:repository/{ecr['repo']}"
        statements += [
            {"Sid": "EcrLogin", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
            {
                "Sid": "PullTheImage",
                "Effect": "Allow",
                "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
                "Resource": repository,
            },
        ]
    return {"Version": VERSION, "Statement": statements}

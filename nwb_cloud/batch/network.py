"""Where the instances run: the default VPC's subnets and security group, or the ones the user names.

Nothing here is specific to one account (NeuroConv hard-codes one account's subnets and security group).
A default VPC's subnets give instances public addresses, which the jobs need to reach the source, ECR and
S3; private subnets given by the user need a NAT gateway or VPC endpoints for the same.
"""

from __future__ import annotations

from dataclasses import dataclass

from nwb_cloud.batch.aws import aws_errors
from nwb_cloud.batch.errors import AwsError


@dataclass(frozen=True)
class Network:
    vpc_id: str
    subnets: tuple[str, ...]
    security_groups: tuple[str, ...]


def discover_network(ec2, subnets: list[str] | None = None, security_groups: list[str] | None = None) -> Network:
    with aws_errors("finding the network (VPC, subnets, security groups)"):
        if subnets:
            found = ec2.describe_subnets(SubnetIds=list(subnets))["Subnets"]
            vpcs = {s["VpcId"] for s in found}
            if len(vpcs) != 1:
                raise AwsError(f"subnets {', '.join(subnets)} are in {len(vpcs)} VPCs; give subnets of one VPC")
            vpc_id = vpcs.pop()
            subnet_ids = tuple(subnets)
        else:
            vpcs = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"]
            if not vpcs:
                raise AwsError(
                    f"no default VPC in {ec2.meta.region_name}: pass --subnets and --security-groups "
                    "(subnets with internet access: a public subnet, or a NAT gateway)"
                )
            vpc_id = vpcs[0]["VpcId"]
            found = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
            subnet_ids = tuple(sorted(s["SubnetId"] for s in found if s.get("DefaultForAz", True)))
            if not subnet_ids:
                raise AwsError(f"the default VPC {vpc_id} has no subnets: pass --subnets")
        if security_groups:
            groups = ec2.describe_security_groups(GroupIds=list(security_groups))["SecurityGroups"]
            wrong = [g["GroupId"] for g in groups if g["VpcId"] != vpc_id]
            if wrong:
                raise AwsError(f"security groups {', '.join(wrong)} are not in {vpc_id}, the subnets' VPC")
            group_ids = tuple(security_groups)
        else:
            groups = ec2.describe_security_groups(
                Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name", "Values": ["default"]}]
            )["SecurityGroups"]
            if not groups:
                raise AwsError(f"VPC {vpc_id} has no default security group: pass --security-groups")
            group_ids = (groups[0]["GroupId"],)
    return Network(vpc_id, subnet_ids, group_ids)

"""A pre-flight look at the service role, so a wrong role fails here with a clear reason.

Bedrock assumes the role later, inside the job; a role that does not exist or does not trust
Bedrock would otherwise surface minutes later as a failed job. Callers without iam:GetRole still
get through: the check is then skipped and they are told so.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from customize.errors import AwsError, UsageError

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

BEDROCK_PRINCIPAL = "bedrock.amazonaws.com"


def role_name(role_arn: str) -> str:
    if ":role/" not in role_arn:
        raise UsageError(f"{role_arn!r} is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)")
    return role_arn.rsplit("/", 1)[-1]


def trusts_service(policy: object, service: str) -> bool:
    """Whether a trust policy document lets ``service`` assume the role."""
    document: Any = json.loads(policy) if isinstance(policy, str) else policy
    if not isinstance(document, Mapping):
        return False
    statements = document.get("Statement", [])
    for statement in statements if isinstance(statements, list) else [statements]:
        if not isinstance(statement, Mapping) or statement.get("Effect") != "Allow":
            continue
        principal = statement.get("Principal", {})
        services = principal.get("Service", []) if isinstance(principal, Mapping) else []
        if service in ([services] if isinstance(services, str) else services):
            return True
    return False


def check_service_role(
    iam: IAMClient, role_arn: str, principal: str = BEDROCK_PRINCIPAL, service: str = "Bedrock"
) -> str | None:
    """Raises when the role is missing or does not trust ``principal``; a note if unverifiable."""
    from botocore.exceptions import ClientError

    name = role_name(role_arn)
    try:
        role = iam.get_role(RoleName=name)["Role"]
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code")
        if code == "NoSuchEntity":
            raise AwsError(f"IAM role {role_arn} does not exist") from None
        if code in ("AccessDenied", "AccessDeniedException"):
            return (
                f"could not check role {name} (no iam:GetRole permission); {service} will check it"
            )
        raise
    if not trusts_service(role.get("AssumeRolePolicyDocument"), principal):
        raise AwsError(
            f"IAM role {name} does not trust {principal}; add it to the role's trust policy"
        )
    return None

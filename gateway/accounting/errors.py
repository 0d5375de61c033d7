"""Accounting's refusals, in the gateway's one error tree (``gateway/errors.py``):

RateLimited (429)
├── KeyRateLimited       429  a key's or tenant's RPM/TPM; Retry-After + x-ratelimit-*
└── BudgetExceeded       429  code ``budget_exceeded`` (OpenAI); ThrottlingException (Bedrock)
StrataError
└── AccountingUnavailable 503 Redis is unreachable and the policy is ``closed``
"""

from __future__ import annotations

from gateway.errors import RateLimited, StrataError


class KeyRateLimited(RateLimited):
    openai_code = "rate_limit_exceeded"


class BudgetExceeded(RateLimited):
    openai_code = "budget_exceeded"


class AccountingUnavailable(StrataError):
    status = 503
    bedrock_code = "ServiceUnavailableException"
    openai_type = "api_error"
    openai_code = "accounting_unavailable"

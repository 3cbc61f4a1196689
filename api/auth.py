"""Bearer tokens for the JSON API: the personal tokens of exports.tokens, counted per token against RATE_LIMIT_API.

A request without a valid token is answered 401 before any endpoint runs (see endpoints.py's handler); a request
over its token's limit 429 with Retry-After. The endpoint then checks the token's user's role on the task, as the
pages do.
"""

from django.http import HttpRequest
from ninja.security import HttpBearer

from exports.tokens import token_active
from pairsmith.ratelimit import Refusal, rate_limit_hit


class RateLimited(Exception):
    """The token made more requests this minute than RATE_LIMIT_API allows."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.message)
        self.refusal = refusal


class TokenAuth(HttpBearer):
    """`Authorization: Bearer psk_…`: the request acts as the token's user (request.user), for what that user may
    do on each task (lead or reviewer: see exports.tokens.token_tasks)."""

    openapi_scheme = "bearer"

    def authenticate(self, request: HttpRequest, token: str):
        row = token_active(raw=token)
        if row is None:
            return None
        refusal = rate_limit_hit(user_id=f"token-{row.pk}", scope="api")
        if refusal is not None:
            raise RateLimited(refusal)
        request.user = row.user
        request.api_token = row
        return row

"""Per-user limits on writes: each person may make so many changes a minute, counted in Django's cache.

The cache is Redis when REDIS_URL is set (settings.CACHES), so every web node counts the same requests; without it,
each process counts alone (a laptop). A scope groups the requests one limit covers:

- "write": saves and autosaves, submits, skips, new examples, verdicts, triage actions, discards (RATE_LIMIT_WRITES);
- "feedback": the editor's checks as the annotator types, which store nothing but run every check (RATE_LIMIT_FEEDBACK);
- "job": imports, export starts and API token creation (RATE_LIMIT_JOBS);
- "api": every request of one API token, reads included (RATE_LIMIT_API; counted per token, not per user).

Each is a number of requests per user in each clock minute (a fixed window; 0 turns the scope off). Only requests
that may change something count (not GET or HEAD), and a refused request does not count, so a person who waits as
told gets through. The refusal is HTTP 429 with what happened and when to try again (and Retry-After), given before
the view runs: nothing is read from the body, nothing is stored.

When the cache cannot be reached (Redis down), requests go through and a warning is logged: annotating and reviewing
go on while Redis is down, and this limit guards against floods; it is not a permission.
"""

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60
# The setting of each scope, and what it counts, in the words of the refusal.
SCOPES = {
    "write": ("RATE_LIMIT_WRITES", "changes (saves, submits, verdicts, …)"),
    "feedback": ("RATE_LIMIT_FEEDBACK", "checks of your text"),
    "job": ("RATE_LIMIT_JOBS", "imports, exports and new API tokens"),
    "api": ("RATE_LIMIT_API", "API requests"),
}
COUNTED_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class Refusal:
    """A request over its scope's limit: the limit, and the seconds until the next window opens."""

    scope: str
    limit: int
    retry_after: int

    @property
    def message(self) -> str:
        what = SCOPES[self.scope][1]
        wait = f"{self.retry_after} second{'s' if self.retry_after != 1 else ''}"
        per = "token" if self.scope == "api" else "person"
        return (
            f"Too many {what}: the limit is {self.limit} a minute per {per}. Nothing was stored; try again in {wait}."
        )


def limit_of(scope: str) -> int:
    """The scope's limit per user and minute (0: no limit), read at each request so tests can change it."""
    return int(getattr(settings, SCOPES[scope][0]))


def rate_limit_hit(*, user_id: int | str, scope: str) -> Refusal | None:
    """Count one request of the user (or of what `user_id` names, e.g. "token-7") in `scope`: None when it is within
    the limit, else a Refusal (not counted).

    Raise KeyError for an unknown scope. A cache that cannot be reached lets the request through (logged).
    """
    limit = limit_of(scope)
    if limit <= 0:
        return None
    now = time.time()
    window = int(now // WINDOW_SECONDS)
    key = f"ratelimit:{scope}:{user_id}:{window}"
    try:
        # incr() is atomic in Redis (and under a lock in the local cache), add() is SET NX with an expiry: two web
        # nodes counting at once never lose a request. Two round trips in the common case (Django's incr checks the
        # key exists first). A key is made in its own minute and lives longer than that minute lasts, so it never
        # expires while it is counted; then Redis drops it.
        try:
            count = cache.incr(key)
        except ValueError:  # the first request of this minute, unless another node's add() comes first
            count = 1 if cache.add(key, 1, timeout=WINDOW_SECONDS + 5) else cache.incr(key)
        if count <= limit:
            return None
        cache.decr(key)  # refused requests do not count: whoever waits as told gets through
    except (RedisError, OSError) as exc:
        logger.warning("Rate limit of %s not checked, the cache is unreachable: %s", scope, exc)
        return None
    retry_after = max(1, math.ceil((window + 1) * WINDOW_SECONDS - now))
    return Refusal(scope=scope, limit=limit, retry_after=retry_after)


def refusal_response(request: HttpRequest, refusal: Refusal, *, fragment: str | None = None) -> HttpResponse:
    """The 429 answer: a whole page, or for htmx a fragment (`fragment`, rendered with `error`, for the request's
    target; else a notice swapped out of band into the page's notice area). Retry-After says when to come back."""
    context = {"error": refusal.message, "refusal": refusal}
    if not getattr(request, "htmx", False):
        response = render(request, "429.html", context, status=429)
    elif fragment:
        response = render(request, fragment, context, status=429)
    else:
        response = render(request, "_rate_limited.html", context, status=429)
        response["HX-Reswap"] = "none"  # the page stays as it was; the notice arrives out of band
    response["Retry-After"] = str(refusal.retry_after)
    return response


def rate_limited(scope: str, *, fragment: str | None = None) -> Callable:
    """Decorate a view: count each of the user's writes in `scope`, answer 429 over the limit (the view not run).

    Put it below the log-in and role checks, so a refusal is never given to someone who may not use the view at all.
    `fragment` is the template an htmx request gets (with `error`), as the view's own answer would look.
    """
    if scope not in SCOPES:
        raise ValueError(f"Unknown rate limit scope {scope!r}; use one of {', '.join(SCOPES)}.")

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if request.method in COUNTED_METHODS and request.user.is_authenticated:
                refusal = rate_limit_hit(user_id=request.user.pk, scope=scope)
                if refusal is not None:
                    return refusal_response(request, refusal, fragment=fragment)
            return view(request, *args, **kwargs)

        return wrapper

    return decorator

"""Request limits per client key and per subject (applicant), in fixed one-minute windows.

Fixed windows are coarse (a client can send up to twice the limit across a window edge) but
need one counter per key and window, which is all Redis INCR+EXPIRE gives atomically, and
they are what the limits are for: stopping a runaway client loop or an applicant hammering
the scan button, not metering. Embedded (no broker): counters live in this process, which
is right because the embedded deployment is one process. With a broker every worker process
shares Redis counters.

A limiter that cannot reach Redis lets the request through (and logs it): refusing every
applicant because a counter store is down would be worse than a minute without limits.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import structlog

from ocr_service.errors import ApiError

log = structlog.get_logger(__name__)

WINDOW_SECONDS = 60


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    count: int
    limit: int
    retry_after: int  # whole seconds until the window resets (>= 1 when refused)


class RateLimiter(Protocol):
    def hit(self, bucket: str, limit: int, window: int = WINDOW_SECONDS) -> RateDecision: ...

    def ping(self) -> bool: ...


class MemoryRateLimiter:
    """Per-process counters; old windows are dropped as new ones start."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._counts: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()

    def hit(self, bucket: str, limit: int, window: int = WINDOW_SECONDS) -> RateDecision:
        now = self._clock()
        start = int(now // window)
        with self._lock:
            if len(self._counts) > 10_000:  # forget finished windows
                self._counts = {k: v for k, v in self._counts.items() if k[1] >= start}
            count = self._counts.get((bucket, start), 0) + 1
            self._counts[(bucket, start)] = count
        return _decision(count, limit, (start + 1) * window - now)

    def ping(self) -> bool:
        return True


class RedisRateLimiter:
    """Shared counters: ``INCR rl:<bucket>:<window>`` then ``EXPIRE`` on the first hit."""

    def __init__(self, url: str, clock: Callable[[], float] = time.time) -> None:
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self._clock = clock

    def hit(self, bucket: str, limit: int, window: int = WINDOW_SECONDS) -> RateDecision:
        now = self._clock()
        start = int(now // window)
        key = f"ocr:rl:{bucket}:{start}"
        try:
            pipe = self._redis.pipeline()
            pipe.incr(key)
            pipe.expire(key, window + 5, nx=True)
            count = int(pipe.execute()[0])
        except Exception as exc:  # redis.RedisError, OSError: fail open, see module docstring
            log.warning("rate_limit_unavailable", error_type=type(exc).__name__)
            return RateDecision(True, 0, limit, 0)
        return _decision(count, limit, (start + 1) * window - now)

    def ping(self) -> bool:
        try:
            return bool(self._redis.ping())
        except Exception:
            return False


def _decision(count: int, limit: int, seconds_left: float) -> RateDecision:
    return RateDecision(count <= limit, count, limit, max(1, math.ceil(seconds_left)))


def build_rate_limiter(broker_url: str) -> RateLimiter:
    """Redis when the broker is Redis (the broker URL doubles as the counter store), else memory."""
    if broker_url.startswith(("redis://", "rediss://")):
        return RedisRateLimiter(broker_url)
    return MemoryRateLimiter()


def enforce(limiter: RateLimiter, kind: str, ident: str, limit: int) -> None:
    """Count one request against ``kind:ident``; raise 429 ``rate_limited`` over the limit."""
    decision = limiter.hit(f"{kind}:{ident}", limit)
    if decision.allowed:
        return
    error = ApiError(
        "rate_limited",
        429,
        f"too many requests for this {kind}; retry in {decision.retry_after} s",
        "请求过于频繁，请稍后再试",
        {"limit": decision.limit, "window_seconds": WINDOW_SECONDS, "scope": kind, "retry_after": decision.retry_after},
    )
    error.headers["Retry-After"] = str(decision.retry_after)
    raise error

"""Fixed-window limits: in memory, on Redis, and as 429 ``rate_limited`` with Retry-After over HTTP."""

# The fixtures come from the shared harness module: imported here, used as parameters.
# ruff: noqa: F401, F811

from __future__ import annotations

from pathlib import Path

import pytest

from ocr_service.errors import ApiError
from ocr_service.ratelimit import MemoryRateLimiter, RedisRateLimiter, build_rate_limiter, enforce
from tests.ocr_service.api_harness import CLEAN, harness, harness_callback_url, photo

REDIS_URL = "redis://127.0.0.1:6379/13"


class Clock:
    def __init__(self, now: float = 1_000_040.0) -> None:  # 20 s into a window
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_the_memory_limiter_allows_up_to_the_limit_in_a_window_then_refuses_until_the_next():
    clock = Clock()
    limiter = MemoryRateLimiter(clock)
    assert [limiter.hit("key:a", 3).allowed for _ in range(4)] == [True, True, True, False]
    refused = limiter.hit("key:a", 3)
    assert refused.retry_after == 40  # 20 s into a 60 s window
    assert limiter.hit("key:b", 3).allowed  # buckets are independent
    clock.now += 40
    assert limiter.hit("key:a", 3).allowed


def test_enforce_raises_429_rate_limited_with_retry_after():
    limiter = MemoryRateLimiter(Clock())
    enforce(limiter, "subject", "s-1", 1)
    with pytest.raises(ApiError) as caught:
        enforce(limiter, "subject", "s-1", 1)
    error = caught.value
    assert (error.status, error.code) == (429, "rate_limited")
    assert error.headers["Retry-After"] == "40"
    assert error.message_zh == "请求过于频繁，请稍后再试"
    assert error.details["scope"] == "subject"


@pytest.fixture
def redis_url() -> str:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.flushdb()
    except redis.exceptions.ConnectionError as exc:
        pytest.fail(f"Redis is not reachable at {REDIS_URL} ({exc}); the broker-mode limiter needs it", pytrace=False)
    finally:
        client.close()
    return REDIS_URL


def test_the_redis_limiter_shares_counters_between_processes_and_expires_them(redis_url):
    import redis

    clock = Clock()
    first, second = RedisRateLimiter(redis_url, clock), RedisRateLimiter(redis_url, clock)
    assert first.hit("key:k", 2).allowed and second.hit("key:k", 2).allowed
    refused = first.hit("key:k", 2)
    assert not refused.allowed and refused.count == 3 and refused.retry_after == 40
    ttl = redis.Redis.from_url(redis_url).ttl("ocr:rl:key:k:16667")
    assert 0 < ttl <= 65
    assert build_rate_limiter(redis_url).ping()


def test_an_unreachable_redis_lets_requests_through():
    limiter = RedisRateLimiter("redis://127.0.0.1:1/0")
    assert all(limiter.hit("key:x", 1).allowed for _ in range(3))
    assert limiter.ping() is False


# --- over HTTP (SQLite only: the limits do not touch the database) -----------------------------


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'data' / 'ocr.db'}"


@pytest.fixture
def harness_settings() -> dict:
    return {"rate_limit_per_minute_subject": 2, "rate_limit_per_minute_key": 6}


def test_too_many_requests_for_one_subject_or_one_key_answer_429(harness):
    harness.app.state.rate_limiter = MemoryRateLimiter(Clock())  # no window edge mid-test
    created = harness.create("busy-subject")  # subject request 1
    assert harness.upload(created["id"], b"").status_code == 422  # subject request 2 (refused image)
    limited = harness.upload(created["id"], photo(CLEAN))
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limited"
    assert int(limited.headers["Retry-After"]) >= 1
    # other subjects of the same key go on until the key's own limit
    codes = [harness.request("GET", f"/v1/verifications/{created['id']}").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]  # key requests 4..7 against a limit of 6 per minute
    # no image was stored by the refused upload
    assert harness.blob_files() == []

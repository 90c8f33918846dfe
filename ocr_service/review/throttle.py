"""Throttling of failed console sign-ins: per account and per client address, with growing lockouts.

Every failed password counts against the typed username (whether or not such an account
exists, so a locked answer never tells an account exists) and against the client's address.
``review_signin_max_failures`` failures lock the username, ``review_signin_max_failures_per_address``
lock the address for every username; each further lockout of the same key doubles, up to
``review_signin_lockout_max_seconds``. A locked sign-in is refused before the password is checked.

The counters live in this process's memory, on purpose: the embedded mode runs without Redis,
and a table would need a migration. The consequence: a restart clears them, and with several
``serve --workers`` each process counts on its own (an attacker gets at most N times the budget).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ocr_service.config import Settings

# a key idle this long is forgotten (its lockout level too), so the store cannot grow without end
_FORGET_AFTER_SECONDS = 24 * 3600
_PRUNE_ABOVE = 10_000


@dataclass
class _Counter:
    failures: int = 0
    lockouts: int = 0
    locked_until: float = 0.0
    last_failure: float = 0.0


@dataclass(frozen=True)
class Lockout:
    """A key that has just been locked: which one and for how long."""

    scope: str  # "account" | "address"
    seconds: int


class SignInThrottle:
    def __init__(self, settings: Settings, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._limits = {
            "account": settings.review_signin_max_failures,
            "address": settings.review_signin_max_failures_per_address,
        }
        self._first_lock = settings.review_signin_lockout_seconds
        self._max_lock = settings.review_signin_lockout_max_seconds
        self._counters: dict[tuple[str, str], _Counter] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _keys(username: str, address: str) -> list[tuple[str, str]]:
        return [("account", username.strip().lower()), ("address", address)]

    def retry_after(self, username: str, address: str) -> int:
        """Seconds until this username may try again from this address; 0 when it may now."""
        now = self.clock()
        with self._lock:
            waits = [
                counter.locked_until - now
                for key in self._keys(username, address)
                if (counter := self._counters.get(key)) is not None
            ]
        return max(0, int(max(waits, default=0) + 0.999))

    def record_failure(self, username: str, address: str) -> list[Lockout]:
        """Count one wrong password; the lockouts it started (none, or the account and/or the address)."""
        now = self.clock()
        started: list[Lockout] = []
        with self._lock:
            if len(self._counters) > _PRUNE_ABOVE:
                self._prune(now)
            for key in self._keys(username, address):
                counter = self._counters.get(key)
                if counter is None or now - counter.last_failure > _FORGET_AFTER_SECONDS:
                    counter = self._counters[key] = _Counter()
                counter.failures += 1
                counter.last_failure = now
                if counter.failures >= self._limits[key[0]]:
                    seconds = min(self._max_lock, self._first_lock * 2**counter.lockouts)
                    counter.lockouts += 1
                    counter.failures = 0
                    counter.locked_until = now + seconds
                    started.append(Lockout(key[0], seconds))
        return started

    def record_success(self, username: str) -> None:
        """A right password clears the account's count (not the address's: it may be guessing others)."""
        with self._lock:
            self._counters.pop(("account", username.strip().lower()), None)

    def _prune(self, now: float) -> None:
        for key in [k for k, c in self._counters.items() if now - c.last_failure > _FORGET_AFTER_SECONDS]:
            del self._counters[key]

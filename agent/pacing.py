"""Pacing shared by the agent and the collector: one token bucket, one exponential backoff.

Both are clock-free arithmetic: the caller passes the time (seconds on any
clock that does not go backwards) and decides what to do with the answer, so
the agent's shipper can sleep off a debt while the collector's outbox folds
what it may not send yet into a digest. Tests drive them with fake clocks.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

#: Float arithmetic on refills must not leave a bucket a hair short of a whole token.
_EPSILON = 1e-9


class TokenBucket:
    """``rate`` tokens a second on average, at most ``capacity`` saved up.

    A bucket starts full, at its first use when ``now`` is not given at creation.
    """

    def __init__(self, rate: float, capacity: float, now: float | None = None) -> None:
        self.rate = rate
        self.capacity = capacity
        self.tokens = float(capacity)
        self.updated = now

    def _refill(self, now: float) -> None:
        if self.updated is not None:
            elapsed = max(0.0, now - self.updated)
            self.tokens = min(self.capacity, self.tokens + elapsed * self.rate)
        self.updated = now

    def available(self, now: float) -> int:
        """Whole tokens that may be taken at ``now``."""
        self._refill(now)
        return int(self.tokens + _EPSILON)

    def try_take(self, now: float, n: int = 1) -> bool:
        """Take ``n`` tokens if there are that many; False (and nothing taken) otherwise."""
        self._refill(now)
        if self.tokens + _EPSILON < n:
            return False
        self.tokens -= n
        return True

    def spend(self, now: float, n: int) -> float:
        """Take ``n`` tokens even into debt; returns the seconds until the debt is paid off."""
        self._refill(now)
        self.tokens -= n
        if self.tokens >= 0:
            return 0.0
        return -self.tokens / self.rate

    def seconds_until(self, now: float, n: int = 1) -> float:
        """How long from ``now`` until ``n`` tokens are there (0 when they are already)."""
        self._refill(now)
        return max(0.0, n - self.tokens) / self.rate


class PacedBucket:
    """A token bucket that makes its caller wait: ``await take(n)`` sleeps off any debt."""

    def __init__(
        self,
        rate: float,
        capacity: float,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
    ) -> None:
        self._bucket = TokenBucket(rate, capacity, clock())
        self._clock = clock
        self._sleep = sleep

    @property
    def rate(self) -> float:
        return self._bucket.rate

    @property
    def capacity(self) -> float:
        return self._bucket.capacity

    async def take(self, n: int) -> float:
        """Spend ``n`` tokens, sleeping off any debt; returns the seconds slept."""
        wait = self._bucket.spend(self._clock(), n)
        if wait > 0:
            await self._sleep(wait)
        return wait


def backoff_ceiling(initial: float, cap: float, attempt: int) -> float:
    """The delay before retry ``attempt`` (from 0): doubling from ``initial``, at most ``cap``."""
    # The exponent is bounded so a long outage cannot overflow the float.
    return min(cap, initial * 2.0 ** min(attempt, 62))


class Backoff:
    """Exponential backoff with full jitter: uniform(0, backoff_ceiling(initial, cap, attempt))."""

    def __init__(self, initial: float, cap: float, rng: Callable[[], float]) -> None:
        self.initial = initial
        self.cap = cap
        self._rng = rng
        self.attempt = 0

    def next_delay(self) -> float:
        ceiling = backoff_ceiling(self.initial, self.cap, self.attempt)
        self.attempt += 1
        return float(self._rng() * ceiling)

    def reset(self) -> None:
        self.attempt = 0

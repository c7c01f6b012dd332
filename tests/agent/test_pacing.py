"""The shared token bucket and backoff, on fake clocks."""

from __future__ import annotations

import asyncio
import random

import pytest

from agent.pacing import Backoff, PacedBucket, TokenBucket, backoff_ceiling


def test_bucket_starts_full_then_refills_at_its_rate() -> None:
    """12 a minute with a burst of 2: two at once, the third five seconds later."""
    bucket = TokenBucket(12 / 60, 2)
    assert bucket.available(100.0) == 2
    assert bucket.try_take(100.0) and bucket.try_take(100.0) and not bucket.try_take(100.0)
    assert bucket.seconds_until(100.0) == pytest.approx(5.0)
    assert not bucket.try_take(104.0)
    assert bucket.try_take(105.0)


def test_bucket_never_saves_more_than_its_capacity() -> None:
    bucket = TokenBucket(1.0, 3, now=0.0)
    assert bucket.try_take(0.0, 3)
    assert bucket.available(1_000.0) == 3
    assert bucket.seconds_until(1_000.0, 2) == 0.0


def test_a_clock_read_out_of_order_adds_no_tokens() -> None:
    bucket = TokenBucket(1.0, 2, now=10.0)
    assert bucket.try_take(10.0, 2)
    assert bucket.available(5.0) == 0


def test_spending_into_debt_says_how_long_to_wait() -> None:
    bucket = TokenBucket(10.0, 20, now=0.0)
    assert [bucket.spend(0.0, 10) for _ in range(4)] == [0.0, 0.0, 1.0, 2.0]
    assert bucket.spend(2.5, 10) == pytest.approx(0.5)  # 2 s of debt, 2.5 s refilled, 1 s spent


def test_paced_bucket_allows_its_burst_then_paces() -> None:
    """A bucket gives its capacity at once, then rate tokens per second."""
    now = [1000.0]
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    bucket = PacedBucket(10, 20, lambda: now[0], sleep)

    async def take() -> list[float]:
        return [await bucket.take(10) for _ in range(4)]

    assert asyncio.run(take()) == [0.0, 0.0, 1.0, 1.0]
    assert sleeps == [1.0, 1.0]


def test_backoff_ceiling_doubles_up_to_its_cap() -> None:
    assert [backoff_ceiling(30, 3600, n) for n in range(9)] == [
        30, 60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert backoff_ceiling(1.0, 300.0, 10_000) == 300.0  # no overflow after a long outage


def test_backoff_jitter_stays_inside_its_ceiling() -> None:
    """With a real random source every delay lies between 0 and its exponential ceiling."""
    backoff = Backoff(1.0, 300.0, random.Random(7).random)  # noqa: S311 (jitter, not crypto)
    delays = [backoff.next_delay() for _ in range(20)]
    assert all(0 <= d <= min(300.0, 2**n) for n, d in enumerate(delays))
    assert len(set(delays)) == 20  # jittered, not a fixed schedule


def test_backoff_starts_over_after_a_reset() -> None:
    backoff = Backoff(1.0, 20.0, lambda: 1.0)
    assert [backoff.next_delay() for _ in range(6)] == [1, 2, 4, 8, 16, 20]
    backoff.reset()
    assert backoff.next_delay() == 1

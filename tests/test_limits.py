"""Unit tests of chatcore.limits.TokenBucket, with time passed in explicitly."""

from __future__ import annotations

import pytest

from chatcore.limits import TokenBucket

T0 = 1000.0


def drain(bucket: TokenBucket, now: float) -> int:
    """Take tokens at ``now`` until refused; return how many were allowed."""
    allowed = 0
    while bucket.take(now):
        allowed += 1
        assert allowed < 10_000, "the bucket never runs dry"
    return allowed


def test_burst_allowed_at_once() -> None:
    """Ensure exactly ``burst`` events pass at one instant."""
    bucket = TokenBucket(rate=1.0, burst=3)
    assert drain(bucket, T0) == 3
    assert not bucket.take(T0)


def test_first_take_starts_full_at_any_time() -> None:
    """Ensure a new bucket is full whatever the first timestamp."""
    assert drain(TokenBucket(rate=5.0, burst=4), 0.0) == 4
    assert drain(TokenBucket(rate=5.0, burst=4), 1e9) == 4


def test_refill_at_rate() -> None:
    """Ensure tokens come back at ``rate`` per second."""
    bucket = TokenBucket(rate=2.0, burst=5)
    drain(bucket, T0)
    assert not bucket.take(T0 + 0.49)
    assert bucket.take(T0 + 0.5)
    assert not bucket.take(T0 + 0.5)
    assert drain(bucket, T0 + 2.0) == 3


def test_partial_refills_add_up() -> None:
    """Ensure several short waits add up to one token."""
    bucket = TokenBucket(rate=1.0, burst=1)
    assert bucket.take(T0)
    assert not bucket.take(T0 + 0.25)
    assert not bucket.take(T0 + 0.5)
    assert not bucket.take(T0 + 0.75)
    assert bucket.take(T0 + 1.0)


def test_refill_capped_at_burst() -> None:
    """Ensure a long quiet period never stores more than ``burst`` tokens."""
    bucket = TokenBucket(rate=10.0, burst=3)
    drain(bucket, T0)
    assert drain(bucket, T0 + 3600) == 3


def test_sustained_rate() -> None:
    """Ensure a steady sender at exactly ``rate`` is never refused after the burst."""
    bucket = TokenBucket(rate=4.0, burst=2)
    drain(bucket, T0)
    allowed = sum(bucket.take(T0 + n * 0.25) for n in range(1, 41))
    assert allowed == 40


def test_cost_above_one() -> None:
    """Ensure ``cost`` spends that many tokens and is refused if not available."""
    bucket = TokenBucket(rate=1.0, burst=5)
    assert bucket.take(T0, cost=3)
    assert not bucket.take(T0, cost=3)
    assert bucket.take(T0, cost=2)
    assert not bucket.take(T0)


def test_refused_take_spends_nothing() -> None:
    """Ensure a refused take leaves the tokens where they were."""
    bucket = TokenBucket(rate=1.0, burst=2)
    assert bucket.take(T0)
    assert not bucket.take(T0, cost=5)
    assert bucket.take(T0)


def test_retry_after() -> None:
    """Ensure retry_after says how long until the next token."""
    bucket = TokenBucket(rate=2.0, burst=2)
    drain(bucket, T0)
    assert bucket.retry_after() == pytest.approx(0.5)
    assert bucket.retry_after(cost=2) == pytest.approx(1.0)
    bucket.take(T0 + 0.2)  # refused, but the 0.4 token is accounted
    assert bucket.retry_after() == pytest.approx(0.3)
    assert not bucket.take(T0 + 0.2 + 0.29)
    assert bucket.take(T0 + 0.5)


def test_retry_after_zero_when_available() -> None:
    """Ensure retry_after is 0 while tokens remain."""
    bucket = TokenBucket(rate=1.0, burst=3)
    assert bucket.take(T0)
    assert bucket.retry_after() == 0.0


def test_clock_going_backwards_adds_no_tokens() -> None:
    """Ensure time running backwards neither refills nor breaks the bucket."""
    bucket = TokenBucket(rate=1.0, burst=2)
    assert bucket.take(T0)
    left = bucket.tokens
    assert bucket.take(T0 - 100)  # the token left is still there...
    assert not bucket.take(T0 - 100)  # ...and the jump back added none
    assert not bucket.take(T0 - 3600)
    assert 0 <= bucket.tokens < left
    # Time moving on from the new reading refills at the usual rate.
    assert not bucket.take(T0 - 3600 + 0.9)
    assert bucket.take(T0 - 3600 + 1.0)

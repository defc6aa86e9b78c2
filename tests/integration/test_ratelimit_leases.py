"""Rate-limit places reserved in blocks: never more than the limit across processes, each place
handed out once, few round trips while far from the limit."""

from __future__ import annotations

import random

import pytest
import redis

from api.ratelimit import RateLimiter
from shared.config import load_settings

pytestmark = pytest.mark.integration


def test_reserved_places_never_exceed_the_limit_across_processes(settings):
    limited = load_settings(redis_url=settings.redis_url, database_url=settings.database_url,
                            data_dir=settings.data_dir, rate_limits="simulate=500/hour")
    redis.Redis.from_url(limited.redis_db_url("ratelimit")).flushdb()
    processes = [RateLimiter(limited) for _ in range(4)]  # four workers, one shared Redis counter
    rng = random.Random(7)
    decisions = [rng.choice(processes).hit("simulate", "k42") for _ in range(800)]
    allowed = [d for d in decisions if d.allowed]
    assert len(allowed) <= 500
    assert len(allowed) >= 500 - 4 * 64  # reserved-but-unused places are bounded
    places = [d.limit.count - d.remaining for d in allowed]
    assert len(places) == len(set(places)), "each place is handed out once"
    assert all(not d.allowed and d.remaining == 0 for d in decisions[len(decisions) - 100:])


def test_a_key_far_from_its_limit_costs_one_round_trip_per_block(settings):
    limited = load_settings(redis_url=settings.redis_url, database_url=settings.database_url,
                            data_dir=settings.data_dir, rate_limits="simulate=100000/hour")
    client = redis.Redis.from_url(limited.redis_db_url("ratelimit"))
    client.flushdb()
    limiter = RateLimiter(limited)
    calls = []
    original = limiter._incr_redis
    limiter._incr_redis = lambda *a, **k: calls.append(a) or original(*a, **k)
    for _ in range(640):
        assert limiter.hit("simulate", "k1").allowed
    assert len(calls) == 10  # blocks of 64
    assert sum(int(client.get(k)) for k in client.keys("nhis:rl:*")) == 640

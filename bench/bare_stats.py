"""The baseline for bench/stats.py: a bare Flask endpoint returning the same bytes from Redis."""

import os

import redis
from flask import Flask, Response

app = Flask(__name__)
_redis = redis.Redis.from_url(os.environ["BARE_REDIS_URL"])
_FIELD = os.environ.get("BARE_FIELD", "risk:latest:all:all:all")


@app.get("/stats")
def stats():
    return Response(_redis.hget("nhis:stats:current", _FIELD), mimetype="application/json")

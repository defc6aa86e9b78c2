"""Gunicorn target: `gunicorn api.wsgi:app`.

gunicorn.conf.py preloads it: the master imports this module and builds the app once, before any
worker exists, and every worker (the first ones and each replacement) is a fork of that warm
master. `create_app` opens no connection (tests/integration/test_gunicorn.py checks the master
holds none); `after_fork` makes sure nothing pooled crosses the fork anyway.
"""

from api import create_app
from shared.db.engine import prepare_driver

app = create_app()
prepare_driver(app.config["SETTINGS"])  # the driver and its TLS context, once, in the master


def after_fork() -> None:
    """Called by gunicorn.conf.py's `post_fork` in each new worker: the SQLAlchemy pool is disposed
    without closing the master's sockets (SQLAlchemy's documented way for forked children); the
    Redis clients start a fresh pool in a new pid by themselves (redis-py checks the pid); the
    Celery producer is only ever built in a worker, on its first task. No I/O here: until the
    worker installs its own signal handlers (after this hook) a stop signal would be lost."""
    app.extensions["resources"].dispose()


def warm() -> None:
    """Called by gunicorn.conf.py's `post_worker_init`, in a new worker before its first request:
    open its database and Redis connections now, while the other workers carry the load, rather
    than on that request."""
    app.extensions["resources"].warm()
    app.extensions["rate_limiter"].warm()


def before_exit() -> None:
    """Called by gunicorn.conf.py's `worker_exit` when a worker leaves normally, before it ends
    without the interpreter's teardown."""
    app.extensions["resources"].close()

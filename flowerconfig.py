"""Flower's configuration file (`celery flower --conf=flowerconfig.py`): basic-auth credentials come
from the environment or a file, never from the command line (argv is visible to every local user
in `ps` and /proc). Flower refuses to start without them, or with the old demo default.

- `FLOWER_BASIC_AUTH_FILE`: a file holding `user:password` (a Docker/Kubernetes secret), or
- `FLOWER_BASIC_AUTH`: `user:password` in the environment.
"""

import os
import sys

_REFUSED = {"admin:change-me", "admin:admin", "user:password"}


def _credentials() -> str:
    path = os.environ.get("FLOWER_BASIC_AUTH_FILE")
    if path:
        with open(path, encoding="utf-8") as handle:
            value = handle.read().strip()
    else:
        value = os.environ.get("FLOWER_BASIC_AUTH", "").strip()
    user, _, password = value.partition(":")
    if not user or len(password) < 12 or value in _REFUSED:
        sys.exit("flower: set FLOWER_BASIC_AUTH (or FLOWER_BASIC_AUTH_FILE) to user:password, "
                 "with a password of 12+ characters that is not a published default")
    return value


basic_auth = [_credentials()]

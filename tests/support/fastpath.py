"""Which fast path (api/fastpath.py) answered a request, and which left it to Flask."""

from __future__ import annotations

from contextlib import contextmanager


@contextmanager
def fast_path_answers(app, path: str = "_stats"):
    """Record, per request, whether fast path ``path`` (``_stats``, ``_simulate`` or ``_records``) answered it
    (True) or left it to Flask."""
    fast = app.wsgi_app
    original, answers = getattr(fast, path), []

    def spy(environ, *args):
        answer = original(environ, *args)
        answers.append(answer is not None)
        return answer

    setattr(fast, path, spy)
    try:
        yield answers
    finally:
        setattr(fast, path, original)

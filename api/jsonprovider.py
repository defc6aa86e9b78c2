"""Fast JSON: orjson, with NaN/inf as null and Decimal/numpy handled (MySQL DECIMAL, pandas)."""

from __future__ import annotations

import decimal

import orjson
from flask.json.provider import JSONProvider

_OPTS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def _default(value):
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def dumps_bytes(obj) -> bytes:
    return orjson.dumps(obj, default=_default, option=_OPTS)


class OrjsonProvider(JSONProvider):
    mimetype = "application/json"

    def dumps(self, obj, **_kwargs) -> str:
        return dumps_bytes(obj).decode("utf-8")

    def loads(self, s, **_kwargs):
        return orjson.loads(s)

    def response(self, *args, **kwargs):
        obj = self._prepare_response_obj(args, kwargs)
        return self._app.response_class(dumps_bytes(obj), mimetype=self.mimetype)


def init_json(app) -> None:
    app.json = OrjsonProvider(app)

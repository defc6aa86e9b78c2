"""The curl examples of docs/API.md, rendered from the OpenAPI document so they cannot drift.

Every operation of `GET /openapi.json` gets one command: its method and path, the path
parameters' examples, the query parameters that carry an example, the `X-API-Key` header when
the operation is secured, and the request body's example. The examples themselves live with the
schemas (marshmallow field metadata, `@blp.arguments(..., example=...)`), where Swagger UI shows
them too.

    python -m api.docs_examples           # rewrite the examples section of docs/API.md
    python -m api.docs_examples --check   # exit 1 if docs/API.md is out of date

tests/unit/test_api_docs.py fails when docs/API.md differs from what this renders, and runs every
example against the app.
"""

from __future__ import annotations

import json
import shlex
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

API_MD = Path(__file__).resolve().parents[1] / "docs" / "API.md"
BEGIN = "<!-- BEGIN examples: rendered by `python -m api.docs_examples` from /openapi.json; do not edit -->"
END = "<!-- END examples -->"
METHODS = ("get", "post", "put", "patch", "delete")


@dataclass
class Example:
    method: str
    template: str  # the documented path, e.g. /api/v1/etl/jobs/{job_id}
    url_path: str  # with parameters filled in and the query string
    summary: str
    tag: str
    secured: bool
    success: str
    body: object | None = None
    headers: dict = field(default_factory=dict)

    def curl(self) -> str:
        parts = ["curl -sS"]
        if self.method != "GET":
            parts.append(f"-X {self.method}")
        parts.append(f'"$NHIS_URL{self.url_path}"')
        lines = [" ".join(parts)]
        if self.secured:
            lines.append('-H "X-API-Key: $NHIS_KEY"')
        for name, value in self.headers.items():
            lines.append(f"-H {shlex.quote(f'{name}: {value}')}")
        if self.body is not None:
            lines.append(f"-d {shlex.quote(json.dumps(self.body, ensure_ascii=False))}")
        return " \\\n  ".join(lines)


def openapi_document() -> dict:
    """The document as the app serves it, built in the embedded mode (nothing to connect to)."""
    from api import create_app

    with tempfile.TemporaryDirectory() as tmp:
        app = create_app({"database_url": None, "redis_url": None, "data_dir": tmp})
        response = app.test_client().get("/openapi.json")
        assert response.status_code == 200, response.status_code
        return response.get_json()


def _resolve(doc: dict, schema: dict) -> dict:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = doc["components"]["schemas"][name]
    return schema


def _example_of(param: dict):
    if "example" in param:
        return param["example"]
    return param.get("schema", {}).get("example")


def _placeholder(doc: dict, schema: dict):
    """A value for a required input without an example: its default, first choice or lower bound."""
    schema = _resolve(doc, schema)
    for key in ("example", "default"):
        if key in schema:
            return schema[key]
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind in ("integer", "number"):
        return max(schema.get("minimum", 1), 1)
    if kind == "boolean":
        return True
    if kind == "array":
        return [_placeholder(doc, schema.get("items", {}))]
    if kind == "object" or "properties" in schema:
        return {name: _placeholder(doc, prop) for name, prop in schema.get("properties", {}).items()
                if name in schema.get("required", ())}
    return "..."


def _query(params: list[dict]) -> str:
    pairs = []
    for param in params:
        value = _example_of(param)
        if value is None and not param.get("required"):
            continue
        if isinstance(value, list):
            if param.get("explode", True):
                pairs += [(param["name"], str(v)) for v in value]
            else:
                pairs.append((param["name"], ",".join(map(str, value))))
        else:
            pairs.append((param["name"], str(value)))
    return "&".join(f"{name}={value}" for name, value in pairs)


def examples(doc: dict) -> list[Example]:
    """One example per operation, in the document's tag order, then path order."""
    out = []
    tags = [t["name"] for t in doc.get("tags", [])]
    default_security = doc.get("security") or []
    for template, item in doc["paths"].items():
        shared_params = item.get("parameters", [])
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            params = shared_params + op.get("parameters", [])
            url_path = template
            for param in (p for p in params if p["in"] == "path"):
                value = _example_of(param)
                if value is None:
                    value = _placeholder(doc, param.get("schema", {}))
                url_path = url_path.replace("{" + param["name"] + "}", str(value))
            query = _query([p for p in params if p["in"] == "query"])
            if query:
                url_path += "?" + query
            body = None
            content = (op.get("requestBody") or {}).get("content", {})
            if "application/json" in content:
                media = content["application/json"]
                body = media.get("example")
                if body is None and op["requestBody"].get("required"):
                    body = _placeholder(doc, media.get("schema", {}))
            headers = {"Content-Type": "application/json"} if body is not None else {}
            success = sorted(code for code in op.get("responses", {}) if code.startswith("2"))
            out.append(Example(
                method=method.upper(), template=template, url_path=url_path,
                summary=" ".join((op.get("summary") or "").split()), tag=(op.get("tags") or [""])[0],
                secured=bool(op.get("security", default_security)), success=", ".join(success),
                body=body, headers=headers,
            ))
    order = {name: i for i, name in enumerate(tags)}
    return sorted(out, key=lambda e: order.get(e.tag, len(order)))  # stable: path order within a tag


def render(doc: dict) -> str:
    descriptions = {t["name"]: t.get("description", "") for t in doc.get("tags", [])}
    lines = [
        BEGIN,
        "## Examples: every operation",
        "",
        "One `curl` command per operation of `/openapi.json` (OpenAPI "
        f"{doc.get('openapi', '?')}, {len(doc['paths'])} paths), with the examples the document carries. "
        "Set the base URL and a key holding the scope named in each heading first:",
        "",
        "```sh",
        "export NHIS_URL=http://127.0.0.1:8000 NHIS_KEY=nhis_…   # `make demo` prints both",
        "```",
    ]
    current_tag = None
    for ex in examples(doc):
        if ex.tag != current_tag:
            current_tag = ex.tag
            lines += ["", f"### {ex.tag}: {descriptions.get(ex.tag, '')}".rstrip(": ")]
        lines += ["", f"`{ex.method} {ex.template}` → {ex.success or 'see the document'}. {ex.summary}".rstrip(),
                  "", "```sh", ex.curl(), "```"]
    lines.append(END)
    return "\n".join(lines)


def replace_section(text: str, section: str) -> str:
    """docs/API.md with its examples section replaced (appended if it has none yet)."""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        _old, tail = rest.split(END, 1)
        return head + section + tail
    return text.rstrip("\n") + "\n\n" + section + "\n"


def main(argv: list[str]) -> int:
    text = API_MD.read_text(encoding="utf-8")
    updated = replace_section(text, render(openapi_document()))
    if "--check" in argv:
        if updated != text:
            print(f"{API_MD.name} is out of date: run python -m api.docs_examples", file=sys.stderr)
            return 1
        return 0
    if updated != text:
        API_MD.write_text(updated, encoding="utf-8")
        print(f"rewrote the examples section of {API_MD}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

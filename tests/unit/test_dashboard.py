"""The dashboard page and its files: a strict CSP (no inline script or style at all), files served
with their types and cache headers, nothing from another origin, both languages complete, and
statistics open to anonymous visitors only when NHIS_PUBLIC_STATS says so (under the anonymous
limit). The page itself is driven in a real browser by tests/integration/test_dashboard_browser.py."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import orjson
import pytest

from api.finisher import DASHBOARD_CSP
from api.routes.dashboard import IMMUTABLE, STATIC, TYPES
from shared.stats import store
from tests.support.apps import assert_envelope, embedded_app, make_key

ASSETS = sorted(p.name for p in STATIC.iterdir() if p.suffix in TYPES)


@pytest.fixture
def app(sqlite_settings, sqlite_resources):
    return embedded_app(sqlite_settings, sqlite_resources)


class _Page(HTMLParser):
    """Every tag with its attributes, and the text inside <script> and <style> elements."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.inline: list[str] = []
        self._inside: str | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag in ("script", "style"):
            self._inside = tag

    def handle_endtag(self, tag):
        if tag == self._inside:
            self._inside = None

    def handle_data(self, data):
        if self._inside and data.strip():
            self.inline.append(data)


def parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


def directives(csp: str) -> dict[str, list[str]]:
    return {part.split()[0]: part.split()[1:] for part in (p.strip() for p in csp.split(";")) if part}


def test_the_page_has_a_strict_csp_and_no_inline_code(app):
    r = app.test_client().get("/")
    assert r.status_code == 200 and r.mimetype == "text/html"
    csp = r.headers["Content-Security-Policy"]
    assert csp == DASHBOARD_CSP
    policy = directives(csp)
    assert policy["default-src"] == ["'none'"]
    assert policy["script-src"] == ["'self'"] and policy["style-src"] == ["'self'"]  # no hashes, no inline
    assert "unsafe" not in csp and "sha256-" not in csp and "data:" not in csp and "*" not in csp
    assert policy["frame-ancestors"] == ["'none'"] and policy["require-trusted-types-for"] == ["'script'"]
    page = parse(r.get_data(as_text=True))
    assert page.inline == []  # no inline script or style element
    for tag, attrs in page.tags:
        assert "style" not in attrs, tag
        assert not [a for a in attrs if a.startswith("on")], (tag, attrs)
        if tag == "script":
            assert attrs.get("src", "").startswith("/static/"), attrs
    assert r.headers["Cache-Control"] == "no-cache"


def test_every_control_has_a_label(app):
    """Each input and select is inside a <label> or named by one (for=), so it has an accessible
    name in either language; buttons have text."""
    html = app.test_client().get("/").get_data(as_text=True)

    class Controls(HTMLParser):
        def __init__(self):
            super().__init__()
            self.depth, self.labelled_ids, self.controls = 0, set(), []

        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            if tag == "label":
                self.depth += 1
                if "for" in attrs:
                    self.labelled_ids.add(attrs["for"])
            elif tag in ("input", "select", "textarea"):
                self.controls.append((attrs.get("id") or attrs.get("name"), self.depth > 0, attrs.get("id")))

        def handle_endtag(self, tag):
            if tag == "label":
                self.depth -= 1

    found = Controls()
    found.feed(html)
    assert len(found.controls) >= 20
    unlabelled = [name for name, inside, ident in found.controls if not inside and ident not in found.labelled_ids]
    assert unlabelled == []
    assert not re.search(r"<button[^>]*>\s*</button>", html)


def test_every_file_the_page_names_is_served_with_its_type_and_a_long_cache(app):
    client = app.test_client()
    page = parse(client.get("/").get_data(as_text=True))
    named = [attrs.get("src") or attrs.get("href") for tag, attrs in page.tags
             if (tag == "script" and "src" in attrs) or (tag == "link" and attrs.get("rel") in ("stylesheet", "icon"))]
    assert {url.split("?")[0].rsplit("/", 1)[1] for url in named} == set(ASSETS)
    for url in named:
        assert re.fullmatch(r"/static/[a-z0-9_.-]+\?v=[0-9a-f]{16}", url), url
        r = client.get(url)
        assert r.status_code == 200, url
        suffix = "." + url.split("?")[0].rsplit(".", 1)[1]
        assert r.headers["Content-Type"] == TYPES[suffix], url
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.headers["Cache-Control"] == IMMUTABLE
        etag = r.headers["ETag"]
        again = client.get(url, headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.data == b""
        stale = client.get(url.split("?")[0] + "?v=0000000000000000")
        assert stale.status_code == 200 and stale.headers["Cache-Control"] == "no-cache"


def test_every_dashboard_file_is_package_data():
    """A wheel (`pip install .`, as the Dockerfiles do) carries every file the page names."""
    import fnmatch
    import tomllib

    config = tomllib.loads((STATIC.parents[1] / "pyproject.toml").read_text("utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["*"]
    for name in [*ASSETS, "dashboard.html"]:
        assert any(fnmatch.fnmatch(name, p) for p in patterns), f"{name} is not package data"


def test_a_file_not_in_the_list_is_not_served(app):
    client = app.test_client()
    for name in ("dashboard.py", "..%2Fauth.py", "nothing.js", "dashboard.html"):
        assert_envelope(client.get(f"/static/{name}"), 404, "not_found")


@pytest.mark.parametrize("name", ASSETS)
def test_no_file_loads_anything_from_another_origin_or_writes_html_strings(name):
    text = (STATIC / name).read_text("utf-8")
    if name.endswith(".svg"):
        assert "<script" not in text and "href" not in text
        return
    text = text.replace('"http://www.w3.org/2000/svg"', "")  # the SVG namespace name, never fetched
    assert "http://" not in text and "https://" not in text and "//cdn" not in text
    assert "@import" not in text and "url(" not in text
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function",
                 "setAttribute(\"style\"", ".style."):
        assert sink not in text, f"{name} uses {sink}"


def _i18n_keys() -> tuple[set[str], set[str]]:
    text = (STATIC / "i18n.js").read_text("utf-8")
    blocks = {}
    for lang in ("en", "ko"):
        body = re.search(r"const " + lang + r" = \{(.*?)\n  \};", text, re.S)[1]
        blocks[lang] = set(re.findall(r"^\s+(\w+): ", body, re.M))
    return blocks["en"], blocks["ko"]


def test_every_label_exists_in_english_and_korean():
    en, ko = _i18n_keys()
    assert en == ko, f"only English: {sorted(en - ko)}; only Korean: {sorted(ko - en)}"
    html = (STATIC / "dashboard.html").read_text("utf-8")
    script = (STATIC / "dashboard.js").read_text("utf-8")
    used = set(re.findall(r'data-i18n(?:-aria-label)?="(\w+)"', html))
    used |= set(re.findall(r'\bt\("(\w+)"', script))
    used |= {f"f_smoking_{w}" for w in ("never", "former", "current")}  # built as f_smoking_${word}
    used |= {f"{c}_desc" for c in ("screening_risk_group", "atp3_risk_category")}  # t(`${column}_desc`)
    assert used, "no label found: the patterns above no longer match the code"
    assert used <= en, f"labels used but not defined: {sorted(used - en)}"


def test_every_factor_and_group_the_api_publishes_has_both_labels():
    from shared.rules import CATEGORY_LEVELS
    from shared.stats.aggregate import FLAGS, MEASURE_NAMES, RISK_GROUPINGS

    text = (STATIC / "i18n.js").read_text("utf-8")

    def table(name: str) -> dict[str, int]:
        body = re.search(r"const " + name + r" = \{(.*?)\n  \};", text, re.S)[1]
        return {k: len(v) for k, v in re.findall(r"^\s+(\w+): \[(\"[^\"]*\", \"[^\"]*\")\]", body, re.M)}

    factors, groups, measures = table("factors"), table("groups"), table("measures")
    assert set(FLAGS) <= set(factors), sorted(set(FLAGS) - set(factors))
    published_groups = {g for column in RISK_GROUPINGS for g in CATEGORY_LEVELS[column]}
    assert published_groups <= set(groups), sorted(published_groups - set(groups))
    assert set(MEASURE_NAMES) <= set(measures), sorted(set(MEASURE_NAMES) - set(measures))


# --- anonymous statistics --------------------------------------------------------------------


def _publish(resources) -> None:
    payload = orjson.dumps({"data": {"people": {"n": 1234}}, "meta": {"stale": False}})
    meta = {"computed_at": "2026-11-01T00:00:00+00:00", "dataset_version": "2024:job1", "rule_version": "test"}
    store.write_generation(resources, {"overview:latest:all:all": payload}, meta)


def test_statistics_need_a_key_unless_the_setting_opens_them(app, sqlite_resources):
    _publish(sqlite_resources)
    client = app.test_client()
    assert_envelope(client.get("/api/v1/stats/overview"), 401, "unauthorized")
    assert b'data-public-stats="false"' in client.get("/").data


def test_public_statistics_are_served_without_a_key_under_the_anonymous_limit(sqlite_settings, sqlite_resources):
    app = embedded_app(sqlite_settings, sqlite_resources, public_stats=True,
                       rate_limits="anonymous=3/minute,stats:read=1000/minute")
    _publish(sqlite_resources)
    client = app.test_client()
    assert b'data-public-stats="true"' in client.get("/", environ_base={"REMOTE_ADDR": "10.9.0.2"}).data
    env = {"REMOTE_ADDR": "10.9.0.1"}
    first = client.get("/api/v1/stats/overview", environ_base=env)
    assert first.status_code == 200 and first.get_json()["data"]["people"]["n"] == 1234
    assert first.headers["RateLimit-Policy"] == "3;w=60"  # the anonymous bucket, per address
    assert client.get("/api/v1/stats/overview", environ_base=env).status_code == 200
    assert client.get("/api/v1/stats/overview", environ_base=env).status_code == 200
    assert_envelope(client.get("/api/v1/stats/overview", environ_base=env), 429, "rate_limited")
    # A key that is sent is still checked; nothing person-level opens.
    other = {"REMOTE_ADDR": "10.9.0.3"}
    assert_envelope(client.get("/api/v1/stats/overview", headers={"X-API-Key": "nhis_0123abcd_" + "A" * 43},
                               environ_base=other), 401, "unauthorized")
    assert_envelope(client.get("/api/v1/records", environ_base={"REMOTE_ADDR": "10.9.0.4"}), 401, "unauthorized")
    assert_envelope(client.post("/api/v1/simulate", json={"sex": "M", "age": 50},
                                environ_base={"REMOTE_ADDR": "10.9.0.5"}), 401, "unauthorized")
    assert_envelope(client.post("/api/v1/stats/refresh", environ_base={"REMOTE_ADDR": "10.9.0.6"}), 401, "unauthorized")
    key = make_key(sqlite_resources, "stats:read")
    keyed = client.get("/api/v1/stats/overview", headers={"X-API-Key": key}, environ_base={"REMOTE_ADDR": "10.9.0.7"})
    assert keyed.status_code == 200 and keyed.headers["RateLimit-Policy"] == "1000;w=60"  # the key's own bucket


def test_a_route_opened_by_a_setting_that_is_not_a_boolean_stops_start_up(app):
    from flask_smorest import Blueprint

    from api.auth import finalize_policies, requires

    bad = Blueprint("bad", __name__)

    @bad.route("/x")
    @requires("stats:read", public_if="data_dir")
    def x():
        return {}

    app.extensions["smorest_api"].register_blueprint(bad, url_prefix="/api/v1/bad")
    with pytest.raises(RuntimeError, match="public_if='data_dir'"):
        finalize_policies(app)
    with pytest.raises(ValueError, match="never public"):
        requires("records:read", person_level=True, public_if="public_stats")


def _contrast(a: str, b: str) -> float:
    def luminance(hex_colour: str) -> float:
        channels = [int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_the_palette_meets_wcag_aa_on_the_page_background():
    """Each colour that text or a chart mark uses reaches 4.5:1 on white (WCAG 2.1 AA for text, so
    3:1 for marks too), also on the light panel background, and says its ratio truly."""
    css = (STATIC / "dashboard.css").read_text("utf-8")
    palette = re.findall(r"--([\w-]+): (#[0-9a-f]{6});\s*/\* ([\d.]+):1", css)
    assert len(palette) >= 12, palette
    soft = re.search(r"--soft: (#[0-9a-f]{6})", css)[1]
    for name, colour, stated in palette:
        ratio = _contrast(colour, "#ffffff")
        assert abs(ratio - float(stated)) < 0.06, f"--{name}: {ratio:.2f}:1, the comment says {stated}:1"
        assert ratio >= 4.5 and _contrast(colour, soft) >= 3, f"--{name} {colour}: {ratio:.2f}:1"
    colour = {name: value for name, value, _ in palette}
    assert _contrast(colour["muted"], soft) >= 4.5  # "withheld" and notices are written on the panel colour
    assert _contrast("#ffffff", colour["accent"]) >= 4.5  # button text

"""The names statistics payloads are stored and asked for under: one owner of the key format for the
store, the refresh, the simulator's peers and the API.

Pure Python on purpose: the web process reads payloads through this module and must not load
pandas, pyarrow or numpy (only the workers that build payloads do).

Keys (every part normalised, so one request has exactly one key):

* ``"{endpoint}:{year}:{sex}:{age_group}"`` for overview, age and percentiles;
* ``"{endpoint}:{year}:{sex}:{age_group}:{population}"`` for risk, factors and region;
* ``"trends:{factor}"`` (every loaded year in one payload) and ``"trends"`` (the list of factors);
* ``"years"`` (the loaded years).

``sex`` is ``all|M|F``; ``age_group`` is ``all`` or a band code 1..18; ``population`` is ``all`` or
``complete_panel``; ``year`` may be ``latest`` (:func:`latest_alias`). ``overview`` takes no sex or
age filter and ``age`` no age filter.
"""

from __future__ import annotations

import re

ENDPOINTS: tuple[str, ...] = ("overview", "risk", "age", "factors", "region", "percentiles", "trends")
YEARS_KEY = "years"
TRENDS = "trends"
TRENDS_INDEX_KEY = TRENDS  # GET /stats/trends without a factor: the list of factors
SEXES: tuple[str, ...] = ("all", "M", "F")
POPULATIONS: tuple[str, ...] = ("all", "complete_panel")
DEFAULT_POPULATION = "all"
PERCENTILES: tuple[int, ...] = (5, 10, 25, 50, 75, 90, 95)
AGE_CODES = range(1, 19)  # code k = ages 5k-5..5k-1, 18 = 85+
YEAR_RANGE = (2002, 2100)
LATEST = "latest"

# Which query filters each endpoint offers (anything else is a 422 naming the field).
FILTERS: dict[str, tuple[str, ...]] = {
    "overview": ("year",),
    "age": ("year", "sex"),
    "percentiles": ("year", "sex", "age_group"),
    "risk": ("year", "sex", "age_group", "population"),
    "factors": ("year", "sex", "age_group", "population"),
    "region": ("year", "sex", "age_group", "population"),
    "trends": ("factor",),
}
POPULATION_ENDPOINTS: tuple[str, ...] = tuple(e for e, f in FILTERS.items() if "population" in f)
FACTOR_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


class FilterError(ValueError):
    """A filter an endpoint does not offer, or a value it does not accept; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def sex_label(sex: object) -> str:
    text = "all" if sex is None else str(sex).strip().lower()
    for label, spellings in (("all", ("all", "")), ("M", ("m", "1", "male")), ("F", ("f", "2", "female"))):
        if text in spellings:
            return label
    raise FilterError("sex", f"unknown sex {sex!r} (use M or F)")


def age_label(age_group: object) -> str:
    if age_group is None or str(age_group).strip().lower() in ("all", ""):
        return "all"
    text = str(age_group).strip()
    if not text.isdigit() or int(text) not in AGE_CODES:
        raise FilterError("age_group", f"unknown age_group {age_group!r} (use 1..18)")
    return str(int(text))


def population_label(population: object) -> str:
    text = DEFAULT_POPULATION if population is None else str(population).strip().lower()
    if text not in POPULATIONS:
        raise FilterError("population", f"unknown population {population!r} (use all or complete_panel)")
    return text


def year_label(year: object) -> str:
    if year is None:
        raise FilterError("year", "year is required")
    text = str(year).strip().lower()
    if text == LATEST:
        return LATEST
    if not text.isdigit() or not YEAR_RANGE[0] <= int(text) <= YEAR_RANGE[1]:
        raise FilterError("year", f"unknown year {year!r}")
    return str(int(text))


def factor_label(factor: object) -> str:
    text = str(factor).strip()
    if not FACTOR_PATTERN.match(text):
        raise FilterError("factor", f"not a factor name: {factor!r}")
    return text


def payload_key(endpoint: str, year: object = None, sex: object = None, age_group: object = None,
                population: object = None, factor: object = None) -> str:
    """The stored key for a request; :class:`FilterError` for a filter the endpoint does not offer.

    sex: None/"all", 1/"1"/"M"/"male", 2/"2"/"F"/"female"; age_group: None/"all" or 1..18;
    population: None/"all" or "complete_panel"; year: a year or "latest".
    """
    if endpoint == YEARS_KEY:
        return YEARS_KEY
    if endpoint not in FILTERS:
        raise FilterError("endpoint", f"unknown endpoint {endpoint!r}")
    offered = FILTERS[endpoint]
    if year is not None and "year" not in offered and str(year).strip().lower() != LATEST:
        raise FilterError("year", f"not available for /stats/{endpoint}")
    given = {"sex": sex, "age_group": age_group, "population": population, "factor": factor}
    for name, value in given.items():
        if value is not None and name not in offered:
            if name == "sex" and sex_label(value) == "all":
                continue
            if name == "age_group" and age_label(value) == "all":
                continue
            raise FilterError(name, f"not available for /stats/{endpoint}")
    if endpoint == TRENDS:
        return TRENDS_INDEX_KEY if factor is None else f"{TRENDS}:{factor_label(factor)}"
    key = f"{endpoint}:{year_label(year)}:{sex_label(sex)}:{age_label(age_group)}"
    if endpoint in POPULATION_ENDPOINTS:
        key += f":{population_label(population)}"
    return key


def latest_alias(key: str) -> str:
    """The same payload under year "latest" (what a request without ?year= reads); keys without a
    year (years, trends) are returned unchanged."""
    parts = key.split(":")
    if len(parts) < 4 or parts[0] not in FILTERS or "year" not in FILTERS[parts[0]]:
        return key
    parts[1] = LATEST
    return ":".join(parts)


def year_of(key: str) -> int | None:
    """The year a year-scoped key belongs to (None for years/trends keys and "latest" aliases)."""
    parts = key.split(":")
    if len(parts) >= 4 and parts[0] in FILTERS and parts[1].isdigit():
        return int(parts[1])
    return None

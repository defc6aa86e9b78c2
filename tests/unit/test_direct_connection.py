"""Which driver errors leave the direct connection usable (shared/db/engine.py); the connection
itself is exercised on MariaDB in tests/integration/test_direct_connection.py and test_fastpath.py."""

from __future__ import annotations

import pytest
from pymysql import err
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Enum,
    Float,
    Integer,
    LargeBinary,
    Numeric,
    SmallInteger,
    String,
    func,
    select,
)

from shared.db.engine import _driver_text, _json_safe, _statement_refused
from shared.db.models import screenings


@pytest.mark.parametrize(("error", "usable"), [
    (err.OperationalError(1969, "Query execution was interrupted (max_statement_time exceeded)"), True),
    (err.OperationalError(3024, "maximum statement execution time exceeded"), True),  # MySQL 8
    (err.IntegrityError(1062, "Duplicate entry"), True),
    (err.OperationalError(1205, "Lock wait timeout exceeded"), True),
    (err.OperationalError(2013, "Lost connection to MySQL server during query"), False),
    (err.OperationalError(2006, "MySQL server has gone away"), False),
    (err.InterfaceError(0, ""), False),  # PyMySQL, on a socket the server closed while idle
    (err.InterfaceError("(0, '')"), False),
])
def test_only_a_server_refusal_keeps_the_connection(error, usable):
    assert _statement_refused(error) is usable


@pytest.mark.parametrize(("type_", "safe"), [
    (Integer(), True), (BigInteger(), True), (SmallInteger(), True), (Float(), True), (Boolean(), True),
    (String(16), True), (Enum("a", "b"), True),
    (Numeric(10, 2), False), (Date(), False), (DateTime(), False), (LargeBinary(), False), (JSON(), False),
])
def test_only_types_a_json_array_carries_exactly_travel_as_json(type_, safe):
    """A Decimal would come back a float, a date a string, bytes not at all: those columns keep
    the driver's own decoding (the statement is then sent as it is)."""
    assert _json_safe(type_) is safe


def test_a_statement_is_sent_as_json_only_on_mariadb_and_only_when_every_column_is_safe():
    from sqlalchemy.dialects import mysql

    maria, mysql_server = mysql.dialect(), mysql.dialect()
    maria.is_mariadb = True
    safe = select(screenings.c.id, screenings.c.sbp, screenings.c.flag_diabetes, screenings.c.rule_version)
    assert _driver_text(safe, maria).as_json and "json_array(" in _driver_text(safe, maria).sql.lower()
    assert not _driver_text(safe, mysql_server).as_json
    with_date = select(screenings.c.id, func.current_date())
    assert not _driver_text(with_date, maria).as_json

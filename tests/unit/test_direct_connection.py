"""Which driver errors leave the direct connection usable (shared/db/engine.py); the connection
itself is exercised on MariaDB in tests/integration/test_direct_connection.py and test_fastpath.py."""

from __future__ import annotations

import pytest
from pymysql import err

from shared.db.engine import _statement_refused


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

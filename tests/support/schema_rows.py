"""Rows as the previous rule version (2026.11.1) stored them, for the migration tests."""

OLD_ROWS = (
    "INSERT INTO screenings (id, year, subscriber_id, sex, age_group, risk_group, bp_category, rule_version,"
    " job_id, chunk_index, line_no) VALUES"
    " (1, 2020, 1, 1, 10, 'INDETERMINATE', 'isolated_systolic', '2026.11.1', 1, 0, 2),"
    " (2, 2020, 2, 2, 11, 'MULTIPLE_RISK_FACTORS', 'stage2', '2026.11.1', 1, 0, 3)"
)

"""Reading Airflow CLI output as MWAA returns it (stdout/stderr, no exit code)."""

from __future__ import annotations

import pytest

from dagtrigger.transports import cli_output

CHAINED = """Traceback (most recent call last):
  File "x.py", line 1, in <module>
    json.loads(conf)
json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "/usr/local/bin/airflow", line 8, in <module>
    sys.exit(main())
airflow.exceptions.DagNotFound: Dag id etl not found
"""


def test_the_last_exception_of_a_chained_traceback_is_the_one_reported():
    assert cli_output.last_exception(CHAINED) == cli_output.CliError(
        "DagNotFound", "Dag id etl not found"
    )


def test_no_traceback_means_no_exception():
    assert cli_output.last_exception("[2026-11-21] {x.py:1} WARNING - noisy\n") is None


def test_usage_errors_from_the_argument_parser_are_recognised():
    stderr = (
        "usage: airflow dags trigger [-h] ...\n\n"
        "airflow dags trigger command error: unrecognized arguments: --bad, see help above.\n"
    )
    assert cli_output.usage_error(stderr) == "unrecognized arguments: --bad, see help above."


def test_json_records_skip_warning_lines():
    stdout = 'WARNING: deprecated\n[{"dag_run_id": "r1", "state": "queued"}]\n'
    records = cli_output.json_records(stdout)
    assert records == [{"dag_run_id": "r1", "state": "queued"}]
    assert cli_output.find_run(records, "r1") == {"dag_run_id": "r1", "state": "queued"}


def test_table_output_has_no_json_records():
    assert cli_output.json_records("dag_id | dag_run_id\n====\netl | r1\n") is None


@pytest.mark.parametrize(
    ("stdout", "state"),
    [("success\n", "success"), ('running, {"a": 1}\n', "running"), ("None\n", None), ("", None)],
)
def test_dags_state_output(stdout, state):
    assert cli_output.dag_state_line(stdout) == state


def test_an_empty_listing_is_no_records_rather_than_unreadable():
    assert cli_output.json_records("No data found\n") == []


def test_multi_line_database_errors_are_read_from_their_exception_line():
    # Given PostgreSQL's unique violation, whose message goes on over several lines
    stderr = (
        "Traceback (most recent call last):\n"
        '  File "/usr/local/airflow/.local/bin/airflow", line 8, in <module>\n'
        "sqlalchemy.exc.IntegrityError: (psycopg2.errors.UniqueViolation) duplicate key value "
        'violates unique constraint "dag_run_dag_id_run_id_key"\n'
        "DETAIL:  Key (dag_id, run_id)=(etl, r1) already exists.\n"
        "\n"
        "[SQL: INSERT INTO dag_run (dag_id, logical_date, run_id) VALUES (%(dag_id)s, ...)]\n"
        "(Background on this error at: https://sqlalche.me/e/14/gkpj)\n"
    )

    # When it is read, Then the exception and its first message line are found
    failure = cli_output.last_exception(stderr)
    assert failure is not None
    assert failure.exception == "IntegrityError"
    assert "dag_run_dag_id_run_id_key" in failure.message

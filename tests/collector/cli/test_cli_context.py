"""What every ``settleguard collector`` command shares: where it works, money, errors.

Each command names its instance and database on stderr; a read-only command never creates a
database or schema; a wrong database URL or a misspelt variable is one clear line; amounts are
yuan with the currency in text and ``*_minor`` integers in JSON.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from settleguard.collector.cli import collector
from settleguard.collector.money import format_money
from settleguard.collector.store import open_store

from tests.helpers.mosquitto import free_port
from tests.helpers.postgres import fresh_database


def cli(*args: str, env: dict[str, str]) -> Result:
    return CliRunner().invoke(collector, list(args), env=env)


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[dict[str, str]]:
    yield {"SETTLEGUARD_INSTANCE_PATH": str(tmp_path / "instance")}


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [
        (581862, "CNY", "¥5,818.62"),
        (581862, "156", "¥5,818.62"),
        (581862, None, "¥5,818.62"),
        (-5, "CNY", "-¥0.05"),
        (123456789, "CNY", "¥1,234,567.89"),
        (1200, "EUR", "EUR 12.00"),
        (None, "CNY", "-"),
    ],
)
def test_money_is_yuan_with_the_currency(minor: int | None, currency: str, text: str) -> None:
    assert format_money(minor, currency) == text


@pytest.mark.parametrize("command", [["gaps"], ["agents", "list"], ["alerts", "list"],
                                     ["users", "list"], ["alerts", "preview", "--gap", "1"]])  # fmt: skip
def test_read_only_command_in_an_empty_place_creates_nothing(
    command: list[str], instance: dict[str, str], tmp_path: Path
) -> None:
    result = cli(*command, env=instance)
    assert result.exit_code == 1
    where, error = result.stderr.splitlines()
    assert where == (f"collector: instance {tmp_path / 'instance'}, database "
                     f"sqlite:///{tmp_path / 'instance' / 'collector.db'}")  # fmt: skip
    assert error.startswith(f"error: no collector database at {tmp_path / 'instance'}")
    assert "SETTLEGUARD_INSTANCE_PATH" in error and "SETTLEGUARD_DATABASE_URL" in error
    assert result.stdout == "" and list(tmp_path.iterdir()) == []


def test_read_only_command_on_a_database_without_our_tables_creates_none() -> None:
    with fresh_database("sg_empty") as url:
        result = cli("gaps", env={"SETTLEGUARD_DATABASE_URL": url})
        assert result.exit_code == 1
        assert result.stderr.splitlines()[-1].startswith("error: no settleguard tables in ")
        store = open_store(url)
        try:
            assert store.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public'") == []
        finally:
            store.close()


def test_writing_command_says_where_and_json_has_it(instance: dict[str, str]) -> None:
    made = cli("init-db", env=instance)
    assert made.exit_code == 0, made.output
    assert made.stderr.startswith(f"collector: instance {instance['SETTLEGUARD_INSTANCE_PATH']}")
    result = cli("reconcile", "--json", "--as-of", "2026-11-26", env=instance)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["instance"] == instance["SETTLEGUARD_INSTANCE_PATH"]
    assert report["database"].endswith("/instance/collector.db")
    assert report["as_of"] == "2026-11-26T15:59:59+00:00"  # 23:59:59 in Asia/Shanghai
    listed = json.loads(cli("gaps", "--json", env=instance).stdout)
    assert listed["gaps"] == [] and listed["instance"] == instance["SETTLEGUARD_INSTANCE_PATH"]


def test_as_of_that_is_not_a_date_is_one_error_line(instance: dict[str, str]) -> None:
    assert cli("init-db", env=instance).exit_code == 0
    for command in (["reconcile"], ["alerts", "run"]):
        result = cli(*command, "--as-of", "yesterday", env=instance)
        assert result.exit_code == 1
        assert result.stderr.splitlines()[-1] == (
            "error: --as-of 'yesterday' is not a date (YYYY-MM-DD) or time (YYYY-MM-DDTHH:MM)"
        )


def _pg_failure(url: str) -> str:
    result = cli("gaps", env={"SETTLEGUARD_DATABASE_URL": url})
    assert result.exit_code == 1
    assert "Traceback" not in result.output and "PoolTimeout" not in result.output
    return result.stderr.splitlines()[-1]


def test_wrong_postgresql_url_is_one_line_with_the_reason() -> None:
    with fresh_database("sg_probe") as url:  # skips without a server; its host is ours
        host_url = url.rsplit("/", 1)[0]
    port = free_port()
    refused = _pg_failure(f"postgresql://postgres@127.0.0.1:{port}/x")
    assert refused.startswith(f"error: cannot connect to PostgreSQL at 127.0.0.1:{port}/x: ")
    assert "refused" in refused
    missing = _pg_failure(f"{host_url}/sg_no_such_database")
    assert missing.endswith('database "sg_no_such_database" does not exist')


def test_unknown_scheme_is_one_line() -> None:
    result = cli("gaps", env={"SETTLEGUARD_DATABASE_URL": "mysql://db/x"})
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.stderr.splitlines()[-1] == (
        "error: unsupported database URL 'mysql://db/x': use sqlite:///PATH or postgresql://…"
    )


def test_misspelt_variable_is_named(instance: dict[str, str]) -> None:
    result = cli("gaps", env={**instance, "SETTLEGUARD_DATABSE_URL": "sqlite:///x.db"})
    assert result.stderr.splitlines()[0] == (
        "warning: SETTLEGUARD_DATABSE_URL is not a settleguard setting and is ignored "
        "(did you mean SETTLEGUARD_DATABASE_URL?)"
    )


def test_every_variable_the_code_reads_is_known() -> None:
    import re

    from settleguard.collector.settings import known_settings

    root = Path(__file__).resolve().parents[3]
    named = set()
    for folder in ("agent", "collector", "settleguard", "simulator", "tests", "docs"):
        for path in (root / folder).rglob("*.*"):
            if path.suffix in {".py", ".md", ".toml"}:
                named |= set(re.findall(r"SETTLEGUARD_([A-Z0-9_]*[A-Z0-9])", path.read_text()))
    assert named - known_settings() - {"DATABSE_URL"} == set()


def test_usage_errors_use_the_one_error_style() -> None:
    result = cli("gaps", "--bogus", env={})
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == "error: No such option '--bogus'."
    assert "Error:" not in result.output


def test_spreadsheet_where_a_csv_is_expected_is_named(
    instance: dict[str, str], tmp_path: Path
) -> None:
    assert cli("keys", "init", env=instance).exit_code == 0
    book = tmp_path / "statement.csv"
    book.write_bytes(b"PK\x03\x04" + bytes(range(256)))  # an .xlsx is a ZIP container
    result = cli("import", str(book), env=instance)
    assert result.exit_code == 1
    last = result.stderr.splitlines()[-1]
    # read as the workbook it is (a damaged one here), never as text in the wrong encoding
    assert "statement.csv: the .xlsx file is damaged" in last and "UTF-8" not in last

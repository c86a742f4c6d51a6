"""Service commands (``marquee auth …``, ``marquee search …``) use the database ``marquee
dev`` gives their service, and say in one line when it does not answer."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from marquee_cli.infra import (
    POSTGRES_ENV,
    STATE_DIR_ENV,
    DevState,
    Piece,
    ProcessRecord,
    service_command_environment,
)
from marquee_cli.main import app as marquee
from marquee_platform.service import ServiceSpec
from marquee_platform.settings import ServiceSettings
from marquee_testing.localinfra import free_port

AUTH = ServiceSpec("auth", ServiceSettings, "marquee_auth.main:create_app", 8001, Path("m"))
GATEWAY = ServiceSpec("gateway", ServiceSettings, "marquee_gateway.main:create_app", 8000)

CLEAN = {
    name: None
    for name in (
        "AUTH_DATABASE_URL",
        "SEARCH_DATABASE_URL",
        "SEARCH_SEARCH_URL",
        "MARQUEE_DATABASE_URL",
        POSTGRES_ENV,
    )
}
"""Unset while a command runs (and whatever it sets is undone afterwards)."""


def running_dev(state_dir: Path, postgres_url: str) -> Path:
    """A dev.json as a running ``marquee dev`` leaves it (this process stands in for it)."""
    owner = ProcessRecord.of("marquee dev", os.getpid())
    assert owner is not None
    DevState(owner=owner, urls={Piece.POSTGRES: postgres_url}).save(state_dir)
    return state_dir


def test_the_command_gets_its_database_on_the_running_devs_postgres(tmp_path: Path) -> None:
    state_dir = running_dev(tmp_path, "postgresql://postgres@127.0.0.1:54999/postgres")
    assert service_command_environment(AUTH, {}, state_dir) == {
        "AUTH_DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1:54999/marquee_auth"
    }
    given = {POSTGRES_ENV: "postgresql://ops:secret@db.internal:5432/postgres"}
    assert service_command_environment(AUTH, given, state_dir) == {
        "AUTH_DATABASE_URL": "postgresql+asyncpg://ops:secret@db.internal:5432/marquee_auth"
    }


@pytest.mark.parametrize(
    "environ",
    [
        {"AUTH_DATABASE_URL": "postgresql://elsewhere/auth"},
        {"auth_database_url": "postgresql://elsewhere/auth"},
        {"MARQUEE_DATABASE_URL": "postgresql://elsewhere/auth"},
    ],
)
def test_a_database_named_in_the_environment_is_left_alone(
    tmp_path: Path, environ: dict[str, str]
) -> None:
    state_dir = running_dev(tmp_path, "postgresql://postgres@127.0.0.1:54999/postgres")
    assert service_command_environment(AUTH, environ, state_dir) == {}
    assert service_command_environment(GATEWAY, {}, state_dir) == {}, "it has no database"


def one_line_failure(args: list[str], env: dict[str, str | None]) -> str:
    result = CliRunner().invoke(marquee, args, env={**CLEAN, **env})
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), f"not a clear failure: {result.exception!r}"
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    return lines[0]


def test_auth_commands_find_the_devs_database_and_say_when_it_does_not_answer(
    tmp_path: Path,
) -> None:
    port = free_port()
    state_dir = running_dev(tmp_path, f"postgresql://postgres@127.0.0.1:{port}/postgres")
    line = one_line_failure(["auth", "list-keys"], {STATE_DIR_ENV: str(state_dir)})
    assert f"127.0.0.1:{port}/marquee_auth" in line
    assert "make dev" in line


def test_search_commands_say_when_their_database_does_not_answer(tmp_path: Path) -> None:
    port = free_port()
    line = one_line_failure(
        ["search", "reindex"],
        {STATE_DIR_ENV: str(tmp_path), POSTGRES_ENV: f"postgresql://postgres@127.0.0.1:{port}/x"},
    )
    assert f"127.0.0.1:{port}/marquee_search" in line
    assert "make dev" in line

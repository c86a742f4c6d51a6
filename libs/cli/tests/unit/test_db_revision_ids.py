"""``marquee db revision`` numbers files after the highest one."""

from __future__ import annotations

from pathlib import Path

from marquee_cli.db import next_revision_id


def test_next_revision_id_follows_the_highest_number(tmp_path: Path) -> None:
    assert next_revision_id(tmp_path) == "0001"
    (tmp_path / "0001_platform_tables.py").touch()
    (tmp_path / "0007_holds.py").touch()
    (tmp_path / "README.py").touch()
    assert next_revision_id(tmp_path) == "0008"

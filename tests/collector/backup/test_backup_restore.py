"""``courtguard-collector backup`` and ``restore`` through main(argv): the archive and its checks.

Agents that keep shipping across a restore are in tests/e2e/test_backup_restore.py.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from collector.cli import main
from collector.settings import CollectorSettings
from tests.postgres import postgres_database

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Run:
    """Run the CLI against a data dir and database; no settings file of the machine is read."""

    def call(*args: str, data_dir: Path, database_url: str) -> tuple[int, str, str]:
        code = main([*args, "--data-dir", str(data_dir), "--database-url", database_url])
        out, err = capsys.readouterr()
        return code, out, err

    return call


@pytest.fixture(autouse=True)
def _no_machine_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # The default settings file, which may be missing, is the test's: /etc is never read.
    monkeypatch.setattr(CollectorSettings, "DEFAULT_CONFIG", tmp_path / "config" / "collector.toml")


@pytest.fixture
def source(tmp_path: Path, run: Run) -> Iterator[dict[str, Any]]:
    """An initialised SQLite collector with one enrollment token and a settings file."""
    config = tmp_path / "config" / "collector.toml"
    config.parent.mkdir()
    config.write_text('log_level = "info"\n')
    where = {"data_dir": tmp_path / "old", "database_url": f"sqlite:///{tmp_path / 'old.db'}"}
    assert run("init", **where)[0] == 0
    code, out, err = run("token", "create", "--quiet", **where)
    assert code == 0, err
    yield {**where, "token": out.strip().splitlines()[-1], "config": config}


def _members(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive, "r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar}  # type: ignore[union-attr]  # every member written is a file


def _rewrite(archive: Path, members: dict[str, bytes]) -> None:
    archive.unlink()
    with tarfile.open(archive, "w:gz") as tar:
        for name, body in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))


def _backup(run: Run, source: dict[str, Any], out: Path) -> str:
    code, output, err = run("backup", str(out), data_dir=source["data_dir"],
                            database_url=source["database_url"])
    assert code == 0, err
    return output


def test_archive_is_private_and_its_manifest_lists_every_member(
        run: Run, source: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "b.tar.gz"
    said = _backup(run, source, out)
    assert out.stat().st_mode & 0o777 == 0o600 and "mode 0600" in said
    with tarfile.open(out, "r:gz") as tar:
        assert tar.getnames()[0] == "manifest.json"
    members = _members(out)
    manifest = json.loads(members.pop("manifest.json"))
    assert set(manifest["members"]) == set(members)
    for name, body in members.items():
        assert hashlib.sha256(body).hexdigest() == manifest["members"][name]["sha256"]
    data_dir = source["data_dir"]
    for name in ("tls/ca.pem", "tls/server.pem", "tls/server.key", "policy-signing.key"):
        assert members[f"data/{name}"] == (data_dir / name).read_bytes()
    assert "database/collector.db" in members
    assert members["config/collector.toml"] == source["config"].read_bytes()
    assert manifest["database"] == "sqlite" and manifest["schema_revision"]
    # A second backup to the same name is refused rather than overwriting the first.
    code, _, err = run("backup", str(out), data_dir=data_dir, database_url=source["database_url"])
    assert code == 1 and "exists already" in err


def test_restore_onto_a_fresh_data_dir_brings_back_keys_tokens_and_settings(
        run: Run, source: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "b.tar.gz"
    _backup(run, source, out)
    source["config"].unlink()  # a new machine has no settings file yet
    fresh = {"data_dir": tmp_path / "new" / "data", "database_url":
             f"sqlite:///{tmp_path / 'new' / 'collector.db'}"}
    code, said, err = run("restore", str(out), **fresh)
    assert code == 0, err
    assert "configuration restored to" in said and "agents keep their enrollment" in said
    for name in ("tls/ca.pem", "tls/server.key", "policy-signing.key"):
        assert (fresh["data_dir"] / name).read_bytes() == (source["data_dir"] / name).read_bytes()
    assert (fresh["data_dir"] / "tls" / "server.key").stat().st_mode & 0o777 == 0o600
    assert fresh["data_dir"].stat().st_mode & 0o777 == 0o700
    assert source["config"].read_text() == 'log_level = "info"\n'
    code, listed, _ = run("token", "list", **fresh)
    assert code == 0 and listed.count("\n") >= 2  # the header and the one token


def test_restore_keeps_an_existing_settings_file(
        run: Run, source: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "b.tar.gz"
    _backup(run, source, out)
    source["config"].write_text('log_level = "debug"\n')
    fresh = {"data_dir": tmp_path / "new", "database_url": f"sqlite:///{tmp_path / 'new.db'}"}
    code, said, err = run("restore", str(out), **fresh)
    assert code == 0, err
    assert source["config"].read_text() == 'log_level = "debug"\n'
    beside = source["config"].with_name("collector.toml.restored")
    assert beside.read_text() == 'log_level = "info"\n' and "was kept" in said


@pytest.mark.parametrize("damage", ["member", "truncated", "extra", "missing", "not-a-backup"])
def test_a_damaged_archive_is_refused_before_anything_is_written(
        run: Run, source: dict[str, Any], tmp_path: Path, damage: str) -> None:
    out = tmp_path / "b.tar.gz"
    _backup(run, source, out)
    members = _members(out)
    if damage == "member":
        key = members["data/policy-signing.key"]
        members["data/policy-signing.key"] = key.replace(b"A", b"B", 1)
        _rewrite(out, members)
        expected = "does not match its sha256"
    elif damage == "truncated":
        whole = out.read_bytes()
        out.write_bytes(whole[: len(whole) // 2])
        expected = "truncated"
    elif damage == "extra":
        members["data/evil.key"] = b"planted"
        _rewrite(out, members)
        expected = "not in the manifest"
    elif damage == "missing":
        del members["data/tls/ca.pem"]
        _rewrite(out, members)
        expected = "are missing"
    else:
        out.write_bytes(b"not a tar file at all" * 100)
        expected = "not a courtguard backup"
    fresh = tmp_path / "new"
    code, _, err = run("restore", str(out), data_dir=fresh,
                       database_url=f"sqlite:///{tmp_path / 'new.db'}")
    assert code == 1 and expected in err and "Traceback" not in err
    assert not fresh.exists() and not (tmp_path / "new.db").exists()


def test_an_archive_from_a_newer_schema_is_refused(
        run: Run, source: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "b.tar.gz"
    _backup(run, source, out)
    members = _members(out)
    manifest = json.loads(members["manifest.json"])
    manifest["schema_revision"] = "0099_from_the_future"
    manifest["collector_version"] = "9.0.0"
    members["manifest.json"] = json.dumps(manifest).encode()
    _rewrite(out, members)
    code, _, err = run("restore", str(out), data_dir=tmp_path / "new",
                       database_url=f"sqlite:///{tmp_path / 'new.db'}")
    assert code == 1 and "0099_from_the_future" in err and "newer collector (9.0.0)" in err


def test_restore_over_a_used_data_dir_or_database_needs_force(
        run: Run, source: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "b.tar.gz"
    _backup(run, source, out)
    code, _, err = run("restore", str(out), **{k: source[k] for k in ("data_dir", "database_url")})
    assert code == 1 and "is not empty" in err and "--force" in err
    # A fresh data dir, but the database already holds a collector's tables.
    code, _, err = run("restore", str(out), data_dir=tmp_path / "new",
                       database_url=source["database_url"])
    assert code == 1 and "already has tables" in err and not (tmp_path / "new").exists()
    code, said, err = run("restore", "--force", str(out),
                          **{k: source[k] for k in ("data_dir", "database_url")})
    assert code == 0, err
    assert "restored" in said


def test_a_chinese_locale_reads_backup_and_restore_in_chinese(
        run: Run, source: dict[str, Any], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    out = tmp_path / "b.tar.gz"
    said = _backup(run, source, out)
    assert said.startswith(f"备份已写入 {out}（") and "权限 0600" in said, said
    code, _, err = run("backup", str(out), data_dir=source["data_dir"],
                       database_url=source["database_url"])
    assert code == 1 and f"{out} 已存在：请指定一个新文件" in err, err
    code, _, err = run("restore", str(out), **{k: source[k] for k in ("data_dir", "database_url")})
    assert code == 1 and "不是空的" in err and "--force" in err, err
    code, said, err = run("restore", str(out), data_dir=tmp_path / "new",
                          database_url=f"sqlite:///{tmp_path / 'new.db'}")
    assert code == 0, err
    assert "已将 " in said and "下一步：用相同的地址和名称启动收集器" in said, said
    assert not re.search(r"^(restored|next:|configuration) ", said, re.MULTILINE), said


def test_backup_of_a_data_dir_that_was_never_initialised_is_refused(
        run: Run, tmp_path: Path) -> None:
    code, _, err = run("backup", str(tmp_path / "b.tar.gz"), data_dir=tmp_path / "none",
                       database_url=f"sqlite:///{tmp_path / 'none.db'}")
    assert code == 1 and "nothing to back up" in err
    assert not (tmp_path / "b.tar.gz").exists()


@pytest.mark.postgres
def test_postgres_backup_restores_into_a_fresh_database(
        run: Run, tmp_path: Path, pg_server_url: str) -> None:
    with postgres_database(pg_server_url) as old_url, postgres_database(pg_server_url) as new_url:
        old = {"data_dir": tmp_path / "old", "database_url": old_url}
        assert run("init", **old)[0] == 0
        assert run("token", "create", "--quiet", "--uses", "3", **old)[0] == 0
        out = tmp_path / "b.tar.gz"
        code, said, err = run("backup", str(out), **old)
        assert code == 0 and "postgresql database" in said, err
        assert "database/collector.pgdump" in _members(out)
        new = {"data_dir": tmp_path / "new", "database_url": new_url}
        code, said, err = run("restore", str(out), **new)
        assert code == 0, err
        engines = [sa.create_engine(url, poolclass=sa.pool.NullPool) for url in (old_url, new_url)]
        try:
            counts = []
            tables = ("enrollment_tokens", "api_keys", "policy_keys", "alembic_version")
            for engine in engines:
                with engine.connect() as conn:
                    counts.append([conn.execute(sa.select(sa.func.count()).select_from(
                        sa.table(table))).scalar() for table in tables])
            assert counts[0] == counts[1] and counts[0][0] == 1
        finally:
            for engine in engines:
                engine.dispose()
        # Restoring again into the now-used database needs --force, and works with it.
        code, _, err = run("restore", str(out), data_dir=tmp_path / "newer", database_url=new_url)
        assert code == 1 and "already has tables" in err
        code, _, err = run("restore", "--force", str(out), data_dir=tmp_path / "newer",
                           database_url=new_url)
        assert code == 0, err


def test_a_database_that_is_not_a_collectors_is_refused_with_a_clear_message(
        run: Run, source: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "b.tar.gz"
    _backup(run, source, out)
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database" * 100)
    code, _, err = run("restore", str(out), data_dir=tmp_path / "new",
                       database_url=f"sqlite:///{garbage}")
    assert code == 1 and "cannot be read" in err and "Traceback" not in err
    code, _, err = run("backup", str(tmp_path / "c.tar.gz"), data_dir=source["data_dir"],
                       database_url=f"sqlite:///{garbage}")
    assert code == 1 and "cannot be read" in err and not (tmp_path / "c.tar.gz").exists()


def test_a_backup_written_into_the_data_dir_holds_neither_itself_nor_its_staging(
        run: Run, source: dict[str, Any]) -> None:
    data_dir = source["data_dir"]
    out = data_dir / "b.tar.gz"
    _backup(run, source, out)
    archived = {name for name in _members(out) if name.startswith("data/")}
    on_disk = {"data/" + p.relative_to(data_dir).as_posix()
               for p in data_dir.rglob("*") if p.is_file() and p != out}
    assert archived == on_disk and "data/policy-signing.key" in archived
    assert not [p for p in data_dir.iterdir() if p.name.startswith(".")]  # staging is gone

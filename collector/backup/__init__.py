"""One archive that brings a collector back on another machine: ``backup`` and ``restore``.

The archive is a gzip-compressed tar file, written with mode 0600 because it holds
the policy signing key and the TLS server key. Its members:

    manifest.json               first: format, collector version, schema revision,
                                database kind, sha256 and size of every other member
    database/collector.db       SQLite: a copy made with SQLite's online backup API
    database/collector.pgdump   PostgreSQL: ``pg_dump --format=custom``
    data/...                    every regular file of the data dir (TLS CA and server
                                key, signing key, link key, policies) except the database
    config/collector.toml       the settings file in effect, when there is one

A restore reads the whole archive and checks every member against the manifest
before it writes anything; the manifest is integrity (a truncated, damaged or
partly altered archive is refused), not authenticity: whoever can rewrite the
archive can rewrite its manifest, so keep it where the server's keys would be kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any, Final

from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import make_url

from agent.events import utcnow
from agent.version import __version__
from collector.backup import messages
from collector.backup.database import (
    backend_of,
    database_is_empty,
    dump_database,
    restore_database,
)
from collector.errors import BackupError
from collector.messages import _
from collector.settings import CollectorSettings
from collector.store.database import redact
from collector.store.migrate import alembic_config, head_revision

FORMAT: Final = 1
MANIFEST: Final = "manifest.json"
DATA_PREFIX: Final = "data/"
CONFIG_MEMBER: Final = "config/collector.toml"
DATABASE_MEMBERS: Final = {"sqlite": "database/collector.db",
                           "postgresql": "database/collector.pgdump"}
#: Files of a data dir that are not state: a process' lock, SQLite's side files.
_NOT_STATE: Final = (".lock", "-wal", "-shm", "-journal", ".partial")
_CHUNK: Final = 1 << 20


@dataclass(frozen=True)
class BackupResult:
    path: Path
    size: int
    database: str
    revision: str
    files: int
    config: Path | None


@dataclass(frozen=True)
class RestoreResult:
    data_dir: Path
    files: int
    database: str
    revision: str
    head: str
    created: str
    version: str
    config_written: Path | None
    config_kept: tuple[Path, Path] | None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _data_files(data_dir: Path, skip: set[Path], staging: Path) -> list[Path]:
    found = []
    for path in sorted(data_dir.rglob("*")):
        if path.is_symlink() or not path.is_file() or path.resolve() in skip:
            continue
        if path.resolve().is_relative_to(staging.resolve()):
            continue
        if path.name.endswith(_NOT_STATE):
            continue
        found.append(path)
    return found


def backup(settings: CollectorSettings, out: Path, config: Path | None) -> BackupResult:
    """Write the archive to ``out`` (a new file, mode 0600); raise BackupError when it cannot."""
    data_dir = settings.data_dir
    if not data_dir.is_dir():
        raise BackupError(_(messages.NO_DATA_DIR).format(data_dir=data_dir))
    if not settings.ca_cert_path.is_file():
        raise BackupError(_(messages.NO_CA).format(path=settings.ca_cert_path))
    if out.exists():
        raise BackupError(_(messages.OUT_EXISTS).format(path=out))
    if not out.parent.is_dir():
        raise BackupError(_(messages.OUT_DIR_MISSING).format(path=out.parent))
    backend = backend_of(settings.database_url)
    partial = out.with_name(out.name + ".partial")
    # Staged beside OUT: the database copy needs room where the archive goes, not in /tmp.
    with tempfile.TemporaryDirectory(prefix=f".{out.name}-", dir=out.parent) as scratch:
        staging = Path(scratch)
        dumped = staging / PurePosixPath(DATABASE_MEMBERS[backend]).name
        revision = dump_database(settings, dumped)
        members: dict[str, Path] = {DATABASE_MEMBERS[backend]: dumped}
        skip = {out.resolve(), partial.resolve()}
        if backend == "sqlite":
            skip.add(Path(make_url(settings.database_url).database or "").resolve())
        files = _data_files(data_dir, skip, staging)
        for path in files:
            # Copied first, so the digest and the archived bytes are of the same content.
            copy = staging / "data" / path.relative_to(data_dir)
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, copy)
            members[DATA_PREFIX + path.relative_to(data_dir).as_posix()] = copy
        if config is not None and config.is_file():
            shutil.copy2(config, staging / "collector.toml")
            members[CONFIG_MEMBER] = staging / "collector.toml"
        manifest = {
            "format": FORMAT,
            "collector_version": __version__,
            "created": utcnow().isoformat(),
            "database": backend,
            "schema_revision": revision,
            "data_dir": str(data_dir),
            "members": {name: {"sha256": _sha256(path), "size": path.stat().st_size,
                               "mode": path.stat().st_mode & 0o777}
                        for name, path in members.items()},
        }
        _write_archive(partial, manifest, members)
    os.replace(partial, out)
    return BackupResult(out, out.stat().st_size, backend, revision, len(files),
                        config if CONFIG_MEMBER in members else None)


def _write_archive(path: Path, manifest: dict[str, Any], members: dict[str, Path]) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)  # an existing partial file keeps its old mode otherwise
    try:
        with os.fdopen(descriptor, "wb") as raw, \
                tarfile.open(fileobj=raw, mode="w:gz", format=tarfile.PAX_FORMAT) as archive:
            descriptor = -1
            body = json.dumps(manifest, indent=2, ensure_ascii=False).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mode, info.mtime = len(body), 0o600, int(utcnow().timestamp())
            archive.addfile(info, io.BytesIO(body))
            for name, source in members.items():
                info = archive.gettarinfo(str(source), arcname=name)
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                with source.open("rb") as handle:
                    archive.addfile(info, handle)
            raw.flush()
            os.fsync(raw.fileno())
    except BaseException:
        if descriptor >= 0:
            os.close(descriptor)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        raise


@dataclass(frozen=True)
class _Verified:
    manifest: dict[str, Any]
    directory: Path


def _member_name_ok(name: str) -> bool:
    pure = PurePosixPath(name)
    return (not pure.is_absolute() and ".." not in pure.parts and name == pure.as_posix()
            and (name in DATABASE_MEMBERS.values() or name == CONFIG_MEMBER
                 or (name.startswith(DATA_PREFIX) and len(pure.parts) > 1)))


def _read_manifest(path: Path, archive: tarfile.TarFile) -> dict[str, Any]:
    manifest: dict[str, Any]
    first = archive.next()
    if first is None or first.name != MANIFEST or not first.isfile():
        raise BackupError(_(messages.NO_MANIFEST).format(path=path))
    handle = archive.extractfile(first)
    assert handle is not None  # noqa: S101 (a regular file member always has a body)
    try:
        manifest = json.loads(handle.read())
        members = manifest["members"]
        if not isinstance(members, dict) or not all(
                isinstance(v, dict) and isinstance(v.get("sha256"), str) for v in members.values()):
            raise ValueError("members is not a table of sha256 digests")
        absent = [key for key in ("format", "database", "schema_revision",
                                  "collector_version", "created") if key not in manifest]
        if absent:
            raise ValueError(f"no {', '.join(absent)}")
    except (ValueError, KeyError, TypeError) as exc:
        raise BackupError(_(messages.BAD_MANIFEST).format(path=path, reason=exc)) from exc
    if manifest["format"] != FORMAT:
        raise BackupError(_(messages.FORMAT_UNKNOWN).format(
            path=path, found=manifest["format"], known=FORMAT,
            version=manifest["collector_version"]))
    for name in members:
        if not _member_name_ok(name):
            raise BackupError(_(messages.BAD_MEMBER_NAME).format(path=path, name=name))
    return manifest


def _verify(path: Path, into: Path) -> _Verified:
    """Read every member, check it against the manifest, keep it under ``into``."""
    if not path.is_file():
        raise BackupError(_(messages.IN_MISSING).format(path=path))
    seen: set[str] = set()
    try:
        with tarfile.open(path, mode="r:gz") as archive:
            manifest = _read_manifest(path, archive)
            listed: dict[str, dict[str, Any]] = manifest["members"]
            # next(), not iteration: iterating starts again at the manifest.
            while (member := archive.next()) is not None:
                name = member.name
                if name not in listed or name in seen or not member.isfile():
                    raise BackupError(_(messages.UNLISTED_MEMBER).format(path=path, name=name))
                handle = archive.extractfile(member)
                assert handle is not None  # noqa: S101 (isfile() was checked above)
                target = into / name
                target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                digest = hashlib.sha256()
                with target.open("wb") as out:
                    os.fchmod(out.fileno(), 0o600)
                    while chunk := handle.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
                if digest.hexdigest() != listed[name]["sha256"]:
                    raise BackupError(_(messages.DIGEST_MISMATCH).format(path=path, name=name))
                seen.add(name)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        if isinstance(exc, FileNotFoundError) and not path.exists():
            raise BackupError(_(messages.IN_MISSING).format(path=path)) from exc
        raise BackupError(_(messages.ARCHIVE_UNREADABLE).format(
            path=path, reason=str(exc) or type(exc).__name__)) from exc
    missing = sorted(set(listed) - seen)
    if missing:
        raise BackupError(_(messages.MEMBER_MISSING).format(path=path, names=", ".join(missing)))
    return _Verified(manifest, into)


def _check_schema_known(path: Path, manifest: dict[str, Any]) -> None:
    revision = manifest["schema_revision"]
    try:
        known = ScriptDirectory.from_config(alembic_config()).get_revision(revision)
    except CommandError:
        known = None
    if known is None:
        raise BackupError(_(messages.NEWER_SCHEMA).format(
            path=path, revision=revision, version=__version__,
            made_by=manifest["collector_version"]))


@contextlib.contextmanager
def _scratch_beside(directory: Path) -> Iterator[Path]:
    """A private directory on the target's file system, so files move in by rename."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{directory.name}-restore-", dir=directory.parent))
    try:
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def restore(settings: CollectorSettings, archive: Path, config: Path | None,
            force: bool) -> RestoreResult:
    """Check ``archive`` whole, then put its data dir, database and settings in place."""
    data_dir = settings.data_dir
    with _scratch_beside(data_dir) as scratch:
        verified = _verify(archive, scratch)
        manifest = verified.manifest
        _check_schema_known(archive, manifest)
        archived = manifest["database"]
        target = backend_of(settings.database_url)
        if archived != target:
            raise BackupError(_(messages.BACKEND_MISMATCH).format(
                path=archive, archived=archived, url=redact(settings.database_url),
                target=target))
        if not force and data_dir.is_dir() and any(
                entry.resolve() != scratch.resolve() for entry in data_dir.iterdir()):
            raise BackupError(_(messages.DATA_DIR_NOT_EMPTY).format(data_dir=data_dir))
        if not force and not database_is_empty(settings):
            raise BackupError(_(messages.DATABASE_NOT_EMPTY).format(
                url=redact(settings.database_url)))

        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(data_dir, 0o700)
        members = manifest["members"]
        files = 0
        for name, entry in members.items():
            if not name.startswith(DATA_PREFIX):
                continue
            destination = data_dir / PurePosixPath(name[len(DATA_PREFIX):])
            destination.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            source = scratch / name
            os.chmod(source, int(entry.get("mode", 0o600)) & 0o700)
            os.replace(source, destination)
            files += 1
        head = restore_database(settings, scratch / DATABASE_MEMBERS[archived], force)

        written: Path | None = None
        kept: tuple[Path, Path] | None = None
        if CONFIG_MEMBER in members and config is not None:
            config.parent.mkdir(parents=True, exist_ok=True)
            if config.exists():
                beside = config.with_name(config.name + ".restored")
                shutil.move(scratch / CONFIG_MEMBER, beside)
                kept = (config, beside)
            else:
                shutil.move(scratch / CONFIG_MEMBER, config)
                written = config
    return RestoreResult(
        data_dir=data_dir, files=files, database=archived,
        revision=str(manifest["schema_revision"]), head=head or str(head_revision()),
        created=str(manifest["created"]), version=str(manifest["collector_version"]),
        config_written=written, config_kept=kept,
    )


def describe_created(value: str) -> str:
    """The archive's creation time as the CLI's other tables show times."""
    try:
        return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M:%S %Z").strip()
    except ValueError:
        return value

"""Every sentence ``backup`` and ``restore`` print, in one place so they can be catalogued.

English source strings in the style of the rest of the CLI; each error says what
happened and what to do. Each is marked ``N_`` for the catalogue and stays English
here; whoever prints one translates it then (``_(messages.X)``), in the locale of
that moment.
"""

from __future__ import annotations

from typing import Final

from collector.messages import N_

# Backup.
NO_DATA_DIR: Final = N_(
    "data dir {data_dir} does not exist: nothing to back up; check --data-dir or --config"
)
NO_CA: Final = N_(
    "{path} is missing: this data dir was never initialised; run `courtguard-collector init` first"
)
OUT_EXISTS: Final = N_("{path} exists already: name a new file (a backup never overwrites one)")
OUT_DIR_MISSING: Final = N_("directory {path} does not exist: create it first or name another OUT")
SQLITE_MISSING: Final = N_(
    "SQLite database {path} does not exist: nothing to back up; check database_url"
)
PG_DUMP_MISSING: Final = N_(
    "pg_dump is not installed: install the PostgreSQL client tools of the server's major "
    "version (Debian: apt-get install postgresql-client)"
)
PG_RESTORE_MISSING: Final = N_(
    "pg_restore is not installed: install the PostgreSQL client tools of the server's major "
    "version (Debian: apt-get install postgresql-client)"
)
NO_SCHEMA: Final = N_(
    "database {url} has no collector schema: nothing to back up; check database_url, or run "
    "`courtguard-collector init`"
)
DATABASE_UNREADABLE: Final = N_(
    "database {url} cannot be read ({reason}): check database_url and that it is a collector's "
    "database"
)
PG_DUMP_FAILED: Final = N_("pg_dump of {url} failed: {reason}")
BACKUP_DONE: Final = N_(
    "backup written to {path} ({size} bytes, mode 0600: it holds the signing and TLS keys, "
    "keep it as secret as the server): {database} database at schema {revision}, "
    "{files} files from {data_dir}{config}"
)
BACKUP_CONFIG: Final = N_(", configuration {path}")

# Restore: the archive.
IN_MISSING: Final = N_("{path} does not exist: name the backup archive to restore")
ARCHIVE_UNREADABLE: Final = N_(
    "{path} is truncated or is not a courtguard backup ({reason}); restore from an intact copy"
)
NO_MANIFEST: Final = N_(
    "{path} has no manifest.json as its first member: it is not a courtguard backup"
)
BAD_MANIFEST: Final = N_(
    "{path}: manifest.json is unusable ({reason}): it is not a courtguard backup"
)
FORMAT_UNKNOWN: Final = N_(
    "{path} is backup format {found}; this collector reads format {known}: restore it with the "
    "collector version that made it ({version})"
)
BAD_MEMBER_NAME: Final = N_("{path}: member {name!r} is not a plain relative file name: refused")
UNLISTED_MEMBER: Final = N_(
    "{path}: member {name!r} is not in the manifest: the archive was altered"
)
DIGEST_MISMATCH: Final = N_(
    "{path}: member {name!r} does not match its sha256 in the manifest: the archive is damaged "
    "or was altered; restore from an intact copy"
)
MEMBER_MISSING: Final = N_(
    "{path}: members {names} listed in the manifest are missing: the archive is truncated"
)
NEWER_SCHEMA: Final = N_(
    "{path} holds schema revision {revision}, which this collector ({version}) does not know: "
    "it was made by a newer collector ({made_by}); install that version or newer, then restore"
)

# Restore: the target.
DATA_DIR_NOT_EMPTY: Final = N_(
    "data dir {data_dir} is not empty: restore goes into a fresh data dir; pass --force to "
    "overwrite what is there"
)
DATABASE_NOT_EMPTY: Final = N_(
    "database {url} already has tables: restore goes into an empty database; create a fresh "
    "one, or pass --force to replace its contents"
)
BACKEND_MISMATCH: Final = N_(
    "{path} holds a {archived} database, but database_url {url} is {target}: restore into "
    "the same kind of database (set database_url)"
)
PG_RESTORE_FAILED: Final = N_("pg_restore into {url} failed: {reason}")
CONFIG_WRITTEN: Final = N_("configuration restored to {path}")
CONFIG_KEPT: Final = N_(
    "configuration {path} exists and was kept; the archived one is beside it as {restored}: "
    "compare them"
)
RESTORE_DONE: Final = N_(
    "restored {files} files into {data_dir} and the {database} database {url} "
    "(schema {revision}, now {head}); backup made {created} by collector {version}"
)
RESTORE_NEXT: Final = N_(
    "next: start the collector on the same address and name (its certificate names them: "
    "{url}); agents keep their enrollment"
)

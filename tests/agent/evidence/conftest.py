"""The collector's fixtures (a real uvicorn server over the test database) for the uploader."""

from tests.collector.conftest import (  # noqa: F401 (fixtures used by name)
    database_url,
    db,
    live_url,
    pg_database,
    settings,
)

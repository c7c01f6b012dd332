"""The collector's store: tables, the engine, migrations, and one module per table family."""

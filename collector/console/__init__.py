"""The security team's web console: server-rendered pages over the collector's store.

``users`` and ``sessions`` hold who may sign in and who is signed in;
``pages`` holds one module per page area, sharing ``page`` (sign-in, role
checks, forms, rendering), and ``web`` assembles them; ``data`` builds what a
page shows, and ``collector.api.queries`` serves the same as JSON.
docs/console.md describes it.
"""

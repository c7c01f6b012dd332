"""The security team's web console: server-rendered pages over the collector's store.

``users`` and ``sessions`` hold who may sign in and who is signed in; ``web``
serves the pages; ``api`` the JSON the pages' data is also available as.
docs/console.md describes it.
"""

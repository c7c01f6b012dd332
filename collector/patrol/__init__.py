"""The patrol of already-published documents (已公开文书巡查).

A court finds most of its publication mistakes after publication. The patrol
reads, every ``[patrol] interval_s``, each configured source of published
documents (``listing``: a directory or mounted export, or an HTTP(S) listing
on an intranet mirror checked against the court's CA), checks each new or
changed document with the documents policy in force (the collector's worker
pool, ``collector.api.documents.DocumentChecker``), and raises one
``collector.document_published`` alert per document that should be withdrawn
or corrected (``runner``). What it last saw of every document is kept in the
store (``state``), so an unchanged document is never downloaded again, a
restart raises nothing twice, and the alert is closed on a later pass once
the document is gone from the source or checks clean. ``settings``: the
``[patrol]`` table of collector.toml; see docs/documents.md.
"""

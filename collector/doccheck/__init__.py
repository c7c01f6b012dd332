"""The clerk's document check (文书检查) in the console.

``work`` runs in the collector's document worker processes (under their memory
and CPU limits): it extracts and scans one uploaded file, groups the findings
by rule and by person, lays the text out with every finding in place and
builds the corrected copy, leaving out the findings a clerk marked as not
applicable. ``results`` keeps each check's outcome in the server's memory for
a while (bounded), so the page can be shown again, a decision applied and
the corrected copy downloaded without uploading the file again.
The store side (history, decisions) is ``collector.store.doccheck``; the page
is ``collector.console.pages.doccheck``. docs/console.md describes it.
"""

"""The collector: ingest, store, correlate, alert and serve the console.

Importing the package imports the agent's registry first: it adds every
detector's evidence models to the table events are validated against
(``agent.events.EVIDENCE_MODELS``), so every collector module validates a
batch with the whole table, whichever module a process imports first.
"""

import agent.registry  # noqa: F401

"""The collector: ingest, store, correlate, alert and serve the console.

Importing the package fills the agent's tables first, whichever collector
module a process imports first: ``agent.registry`` adds every detector's
policy kind and evidence models, and ``collector.routing.policy`` the
collector's own kinds, so the loader, ``policy check``, bundle parsing and
batch validation it runs from ``agent`` see them all. Agents never import
this package.
"""

import agent.registry  # noqa: F401 (imported for its registrations)
import collector.routing.policy  # noqa: F401 (imported for its kind registration)

"""Every detector the agent can run, written down once, and the tables derived from them.

The daemon iterates ``DETECTORS`` and knows no detector by name. A security
agent lists the code it runs: no discovery by import magic. Each detector
lives in ``agent/detectors/<name>/`` and adds one ``DetectorSpec`` here; its
policy model and evidence models come with it (docs/architecture.md: how to
add a detector).

``POLICY_KINDS`` is every policy kind and ``EVIDENCE_MODELS`` every event kind
with a fixed evidence shape. Both tables live below the detectors, in the
policy language (``agent.policy.models``) and the wire contract
(``agent.events``), which validate with them and so cannot import the
detectors: they start with the agent's own kinds, and importing this module
adds each detector's (``register``). The agent's daemon, spool and policy
loader and the collector's package import it before they read a policy or validate an
event. A kind no detector reads registers the same way beside its model: the
agent's own ``agent`` kind in ``agent.policy.models``, the collector's
``alerting`` kind in ``collector.routing.policy``.
"""

from __future__ import annotations

from typing import Any, Final

from agent.detector import DetectorSpec
from agent.detectors.accounts.spec import SPEC as ACCOUNTS
from agent.detectors.documents.spec import SPEC as DOCUMENTS
from agent.detectors.outreach.spec import SPEC as OUTREACH
from agent.events import EVIDENCE_MODELS as _EVIDENCE_MODELS
from agent.events import Evidence, register_evidence_models
from agent.policy.models import POLICY_KINDS as _POLICY_KINDS
from agent.policy.models import PolicyDocument, register_policy_kinds

DETECTORS: Final[tuple[DetectorSpec[Any, Any], ...]] = (ACCOUNTS, DOCUMENTS, OUTREACH)


def register(spec: DetectorSpec[Any, Any]) -> None:
    """Add ``spec``'s policy kind and evidence kinds to the tables; a clash is a ValueError."""
    register_policy_kinds(spec.policy_model)
    register_evidence_models(spec.evidence_models)


for _spec in DETECTORS:
    register(_spec)

#: Every policy kind this process understands, and the model that validates it.
POLICY_KINDS: Final[dict[str, type[PolicyDocument]]] = _POLICY_KINDS
#: Every event kind whose evidence has a fixed shape (the table ``Event`` validates with).
EVIDENCE_MODELS: Final[dict[str, type[Evidence]]] = _EVIDENCE_MODELS

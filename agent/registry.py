"""Every detector the agent can run, written down once, and the tables derived from them.

The daemon iterates ``DETECTORS`` and knows no detector by name. A security
agent lists the code it runs: no discovery by import magic. Each detector
lives in ``agent/detectors/<name>/`` and adds one ``DetectorSpec`` here; its
policy model and evidence models come with it.

``POLICY_KINDS`` is every policy kind: each detector's section, and the kinds
no detector reads (``OTHER_POLICY_MODELS``). ``EVIDENCE_MODELS`` is every
event kind with a fixed evidence shape: the agent's own
(``agent.events.AGENT_EVIDENCE_MODELS``) and each detector's. The wire
contract validates events against that same table, which this module fills
when it is imported (``agent.events.register_evidence_models``): the contract
sits below every detector and cannot import them. The agent's daemon and spool
and the collector's package import this module before they validate an event.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from agent.detector import DetectorSpec
from agent.detectors.accounts.spec import SPEC as ACCOUNTS
from agent.detectors.documents.spec import SPEC as DOCUMENTS
from agent.detectors.outreach.spec import OUTREACH
from agent.events import EVIDENCE_MODELS as _EVIDENCE_MODELS
from agent.events import Evidence, register_evidence_models
from agent.policy.alerting import AlertingPolicy
from agent.policy.models import AgentPolicy, PolicyDocument

DETECTORS: Final[tuple[DetectorSpec[Any, Any], ...]] = (ACCOUNTS, DOCUMENTS, OUTREACH)

#: Policy kinds that are no detector's section: the agent's own rules (silence, drops) and
#: the collector's alert routing. A new kind of that sort is added here.
OTHER_POLICY_MODELS: Final[tuple[type[PolicyDocument], ...]] = (AgentPolicy, AlertingPolicy)


def policy_kinds(
    detectors: Iterable[DetectorSpec[Any, Any]], others: Iterable[type[PolicyDocument]]
) -> dict[str, type[PolicyDocument]]:
    """Each kind's model; a kind declared twice is an error, not a silent override."""
    kinds: dict[str, type[PolicyDocument]] = {}
    for model in [*(spec.policy_model for spec in detectors), *others]:
        if kinds.setdefault(model.KIND, model) is not model:
            raise ValueError(
                f"policy kind {model.KIND!r} is declared twice: "
                f"{kinds[model.KIND].__name__} and {model.__name__}"
            )
    return kinds


#: Every policy kind this code base understands, and the model that validates it.
POLICY_KINDS: Final[dict[str, type[PolicyDocument]]] = policy_kinds(
    DETECTORS, OTHER_POLICY_MODELS
)

for _spec in DETECTORS:
    register_evidence_models(_spec.evidence_models)

#: Every event kind whose evidence has a fixed shape (the table ``Event`` validates with).
EVIDENCE_MODELS: Final[dict[str, type[Evidence]]] = _EVIDENCE_MODELS

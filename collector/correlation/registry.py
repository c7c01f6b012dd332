"""Every correlator the collector runs over ingested events, written down once.

A correlator has the agent detector's shape (``agent.detector.Detector``):
pure ``evaluate(event, section, now)`` and ``finalize(section, now)``, fed
stored events instead of a source's observations, so its rules' cases run
through the same ``agent.policy.cases`` runner. Each entry names its policy
section and its ``observation_type``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from collector.correlation.accounts import AccountsCorrelator, StoredAccountEvent
from collector.correlation.silent import HeartbeatObservation, SilentCorrelator
from collector.store.host_identity import CONFLICT_KIND, SUPERSEDED_KIND


@dataclass(frozen=True)
class CorrelatorSpec:
    name: str
    description: str
    policy_section: str
    make_detector: Callable[[], Any]
    observation_type: Any
    #: The kinds this correlator concludes; no agent may send them.
    kinds: frozenset[str]


CORRELATORS: Final[tuple[CorrelatorSpec, ...]] = (
    CorrelatorSpec(
        name=SilentCorrelator.name,
        description=SilentCorrelator.description,
        policy_section=SilentCorrelator.policy_section,
        make_detector=SilentCorrelator,
        observation_type=HeartbeatObservation,
        kinds=SilentCorrelator.kinds,
    ),
    CorrelatorSpec(
        name=AccountsCorrelator.name,
        description=AccountsCorrelator.description,
        policy_section=AccountsCorrelator.policy_section,
        make_detector=AccountsCorrelator,
        observation_type=StoredAccountEvent,
        kinds=AccountsCorrelator.kinds,
    ),
)


#: Kinds only the collector stores: its own ``collector.*`` events, what correlators conclude,
#: and what enrollment concludes about a host's identities.
COLLECTOR_KIND_PREFIX: Final = "collector."
CORRELATED_KINDS: Final[frozenset[str]] = frozenset().union(*(c.kinds for c in CORRELATORS))
ENROLLMENT_KINDS: Final = frozenset({SUPERSEDED_KIND, CONFLICT_KIND})


def made_by_collector(kind: str) -> bool:
    """Whether only the collector may store events of ``kind`` (an agent sending one forges it)."""
    return (kind.startswith(COLLECTOR_KIND_PREFIX) or kind in CORRELATED_KINDS
            or kind in ENROLLMENT_KINDS)

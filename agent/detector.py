"""The one interface every detector implements: sources gather, detectors decide.

A *source* does the I/O (psutil, netlink, the journal, the file system)
through its detector's readers (``agent/detectors/<name>/readers/``), merges
what they gather and yields observations; it may block only in a thread it
owns. A *detector* is
pure: an observation, its policy section and the clock in, findings out.
``finalize`` is for checks that need a window (aggregation, bursts) and is
called on a timer and at shutdown.

A ``DetectorSpec`` ties one source to one detector and is the detector's one
declaration: what it needs, its policy model, its evidence models, its
settings model and what its source yields. The registry (``agent.registry``)
lists every spec once and derives the policy kinds and evidence kinds from
them; the daemon knows no detector by name, and the wire contract
(``agent.events``) and the policy language (``agent.policy.models``) import
none.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from pydantic import BaseModel

from agent.events import Evidence, Finding
from agent.policy.models import PolicyDocument

ObsT = TypeVar("ObsT")
ObsT_co = TypeVar("ObsT_co", covariant=True)
ObsT_contra = TypeVar("ObsT_contra", contravariant=True)
SectionT = TypeVar("SectionT", bound=PolicyDocument)
SectionT_contra = TypeVar("SectionT_contra", bound=PolicyDocument, contravariant=True)


class SourceUnavailable(Exception):
    """A source cannot run here (privilege, kernel feature, platform); the reason is the message."""


class Source(Protocol[ObsT_co]):
    """Gathers observations. ``observations`` runs until cancelled.

    A source whose work depends on policy (a kernel filter built from the
    intranet lists, the folders to watch) also defines
    ``update_policy(section)``; the daemon calls it, on the event loop, each
    time a new policy is applied, after the detector already sees the new
    section. Sources without it are simply not told.
    """

    def observations(self) -> AsyncIterator[ObsT_co]: ...


@dataclass(frozen=True)
class SourceContext:
    """What the daemon hands ``DetectorSpec.make_source``: settings, policy section, privileges.

    ``capabilities`` is the process's effective set, so a source that runs
    degraded can choose the work it can still do.
    """

    settings: Any
    policy: PolicyDocument | None
    capabilities: frozenset[str]


def source_in(package: str) -> Callable[[SourceContext], Any]:
    """``make_source`` of ``<package>.source``, imported when the daemon first builds it.

    Every spec is imported by the collector and by the rule-case runner; only the
    daemon runs sources, whose readers pull in netlink, psutil or watchdog.
    """

    def make_source(context: SourceContext) -> Any:
        return importlib.import_module(f"{package}.source").make_source(context)

    return make_source


class Detector(Protocol[ObsT_contra, SectionT_contra]):
    """Decides. Pure: no I/O, no clock of its own, no global state."""

    name: ClassVar[str]
    policy_section: ClassVar[str]
    description: ClassVar[str]

    def evaluate(
        self, observation: ObsT_contra, policy: SectionT_contra, now: datetime
    ) -> Iterable[Finding]: ...

    def finalize(self, policy: SectionT_contra, now: datetime) -> Iterable[Finding]: ...


@dataclass(frozen=True)
class DetectorSpec(Generic[ObsT, SectionT]):
    """One registry entry: how to build a source and its detector, and what they need.

    ``capabilities`` are Linux capability names (``CAP_NET_RAW``...). When the
    process lacks one, the daemon still starts the detector if
    ``runs_degraded`` is true and reports it degraded, otherwise it reports the
    detector degraded and does not start it; the agent itself never fails for
    a missing privilege.

    ``observation_type`` is what the source yields, as a type pydantic can
    validate (a model, or an annotated union of models): rule cases in the
    policy files are written as data and validated against it.

    ``policy_model`` reads the detector's policy section (its ``KIND`` is
    ``policy_section``); ``evidence_models`` maps each event kind the detector
    makes (and any the collector makes from its events) to its evidence model;
    ``settings_model`` is the detector's table in agent.toml, when it has one.
    """

    name: str
    description: str
    policy_section: str
    make_source: Callable[[SourceContext], Source[ObsT]]
    make_detector: Callable[[], Detector[ObsT, SectionT]]
    policy_model: type[SectionT]
    evidence_models: Mapping[str, type[Evidence]] = field(default_factory=dict)
    settings_model: type[BaseModel] | None = None
    capabilities: frozenset[str] = field(default_factory=frozenset)
    runs_degraded: bool = False
    finalize_every_s: float = 10.0
    observation_type: Any = None

    def __post_init__(self) -> None:
        if not self.description.endswith("."):
            raise ValueError(
                f"detector {self.name}: description must be one sentence ending with '.'"
            )
        if self.policy_section != self.policy_model.KIND:
            raise ValueError(
                f"detector {self.name}: policy_model reads kind {self.policy_model.KIND!r}, "
                f"not its section {self.policy_section!r}"
            )

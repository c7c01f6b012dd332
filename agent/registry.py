"""Every detector the agent can run, written down once.

The daemon iterates this tuple and knows no detector by name. A security
agent lists the code it runs: no discovery by import magic. Each detector
lives in ``agent/detectors/<name>/`` and adds one ``DetectorSpec`` here.
"""

from __future__ import annotations

from typing import Any, Final

from agent.detector import DetectorSpec
from agent.detectors.accounts.spec import SPEC as ACCOUNTS
from agent.detectors.documents.spec import SPEC as DOCUMENTS
from agent.detectors.outreach.spec import OUTREACH

DETECTORS: Final[tuple[DetectorSpec[Any, Any], ...]] = (ACCOUNTS, DOCUMENTS, OUTREACH)

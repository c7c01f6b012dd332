"""An agent process has no model of the collector's own kinds, yet meets their files.

The test suite imports collector code, which registers those kinds, so what a
workstation does is checked in a fresh interpreter that imports agent code only.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import collector.routing.policy  # noqa: F401 (registers alerting for the full bundle below)
from agent.policy.loader import load_policy_dir
from agent.policy.models import COLLECTOR_ONLY_KINDS, POLICY_KINDS
from agent.testing import PolicySigner

REPO = Path(__file__).resolve().parents[3]

AGENT_ONLY = """
import json, sys
from pathlib import Path

import agent.daemon, agent.policy.bundle, agent.policy.check, agent.policy.client
from agent.policy.bundle import open_bundle
from agent.policy.loader import load_policy_dir

given = json.loads(sys.stdin.read())
local = load_policy_dir(Path(given["policies"]))
_, served = open_bundle(given["body"].encode(), given["signature"], given["key"],
                        group="default", applied_version=None, required=frozenset({"agent"}))
print(json.dumps({
    "collector_modules": sorted(m for m in sys.modules if m.split(".")[0] == "collector"),
    "local": sorted(local.documents), "collector_only": list(local.collector_only),
    "served": sorted(served.documents),
}))
"""


def test_an_agent_imports_no_collector_code_and_leaves_collector_kinds_out() -> None:
    """A policy_dir copied whole still loads (the duty roster named for deletion), and a full
    bundle, as served before agents got their own, still applies without it."""
    full = load_policy_dir(REPO / "policies")
    assert set(COLLECTOR_ONLY_KINDS) <= set(full.documents)
    assert all(not POLICY_KINDS[kind].AGENT_READS for kind in COLLECTOR_ONLY_KINDS)
    assert full.collector_only == tuple(sorted(COLLECTOR_ONLY_KINDS))
    signer = PolicySigner()
    signed = signer.bundle(full.documents, 1)
    given = {"policies": str(REPO / "policies"), "body": signed.body.decode(),
             "signature": signed.signature, "key": signer.public_key}
    done = subprocess.run([sys.executable, "-c", AGENT_ONLY], input=json.dumps(given),
                          capture_output=True, text=True, check=True, timeout=120)
    seen = json.loads(done.stdout)
    assert seen["collector_modules"] == []
    kinds = sorted(set(full.documents) - COLLECTOR_ONLY_KINDS)
    assert seen["local"] == kinds and seen["served"] == kinds
    assert seen["collector_only"] == sorted(COLLECTOR_ONLY_KINDS)

"""Build hook: ship the repository's ``policies/`` inside the package as ``agent/policies_default``.

Everything else about the build is in pyproject.toml. The policies stay where
people edit them (``policies/``); a wheel gets a copy, so ``courtguard-agent
scan`` and the collector find them after a plain ``pip install``
(``agent.bundled_policies``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

POLICIES = Path(__file__).resolve().parent / "policies"


class BuildWithPolicies(build_py):  # type: ignore[misc]  # setuptools is untyped here
    def run(self) -> None:
        super().run()
        if not POLICIES.is_dir():  # building from an sdist made without them: nothing to ship
            return
        target = Path(self.build_lib) / "agent" / "policies_default"
        target.mkdir(parents=True, exist_ok=True)
        for policy in sorted(POLICIES.glob("*.yaml")):
            shutil.copy2(policy, target / policy.name)


setup(cmdclass={"build_py": BuildWithPolicies})

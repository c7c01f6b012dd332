"""Build hook: ship the policies and compiled bytecode with the package.

Everything else about the build is in pyproject.toml.

* ``policies/``: they stay where people edit them; a wheel gets a copy as
  ``agent/policies_default``, so ``courtguard-agent scan`` and the collector
  find them after a plain ``pip install`` (``agent.bundled_policies``).
* bytecode: every module is compiled at build time (``__pycache__`` in the
  wheel). The agent runs from a read-only tree (``ProtectSystem=strict``),
  where Python cannot cache what it compiles: an install made with
  ``--no-compile`` or under ``PYTHONDONTWRITEBYTECODE=1`` would otherwise
  compile every module again at every start.
"""

from __future__ import annotations

import compileall
import py_compile
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

POLICIES = Path(__file__).resolve().parent / "policies"


class BuildWithPolicies(build_py):  # type: ignore[misc]  # setuptools is untyped here
    def run(self) -> None:
        super().run()
        # compileall, not build_py's own byte_compile: that one is skipped under
        # PYTHONDONTWRITEBYTECODE, the very setting this guards against. Checked hashes,
        # not timestamps: an installer need not keep the sources' modification times.
        for package in ("agent", "collector"):
            compileall.compile_dir(
                Path(self.build_lib) / package,
                quiet=1,
                invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH,
            )
        if not POLICIES.is_dir():  # building from an sdist made without them: nothing to ship
            return
        target = Path(self.build_lib) / "agent" / "policies_default"
        target.mkdir(parents=True, exist_ok=True)
        for policy in sorted(POLICIES.glob("*.yaml")):
            shutil.copy2(policy, target / policy.name)


setup(cmdclass={"build_py": BuildWithPolicies})

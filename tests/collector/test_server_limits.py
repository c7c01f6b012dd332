"""``serve`` raises its open-file limit: every agent's held policy fetch is an open connection."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import resource
from collector.server import raise_open_file_limit
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
wanted = 300 if hard == resource.RLIM_INFINITY else min(300, hard)
assert raise_open_file_limit(wanted) == wanted, resource.getrlimit(resource.RLIMIT_NOFILE)
assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == wanted
# Never lowered, never above the hard limit (raising that needs privilege).
assert raise_open_file_limit(100) == wanted
if hard != resource.RLIM_INFINITY:
    assert raise_open_file_limit(hard + 1000) == hard
print("ok")
"""


def test_the_soft_limit_is_raised_towards_what_is_wanted_never_past_the_hard_one() -> None:
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"

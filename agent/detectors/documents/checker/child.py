"""Extract one file under hard limits, in a process of its own.

Run as ``python -m agent.detectors.documents.checker.child PATH MAX_BYTES``.
The agent runs this per document so that a decompression bomb, a parser loop
or a crash costs a child process, never the agent. It prints one JSON object:
``{"parts": [{"name", "text"}]}`` or ``{"error": message}``; a child killed by
its limits simply exits non-zero. The limits are POSIX rlimits; on Windows
(no ``resource``) the child runs without them and the agent's timeout ends it.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

from agent.detectors.documents.checker.extract import DEFAULT_LIMITS, ExtractionError, extract_file
from agent.detectors.documents.checker.worker import (
    WORKER_CPU_SECONDS,
    WORKER_MEMORY_BYTES,
    die_with_parent,
)


def _limit_self() -> None:
    try:
        import resource
    except ImportError:  # Windows: no rlimits
        return
    resource.setrlimit(resource.RLIMIT_AS, (WORKER_MEMORY_BYTES, WORKER_MEMORY_BYTES))
    resource.setrlimit(resource.RLIMIT_CPU, (WORKER_CPU_SECONDS, WORKER_CPU_SECONDS + 5))


def main() -> int:
    die_with_parent()
    _limit_self()
    path, max_bytes = Path(sys.argv[1]), int(sys.argv[2])
    limits = replace(DEFAULT_LIMITS, max_file_bytes=max_bytes)
    try:
        extracted = extract_file(path, limits)
        answer: dict[str, object] = {
            "parts": [{"name": p.name, "text": p.text} for p in extracted.parts]
        }
    except ExtractionError as exc:
        answer = {"error": str(exc)}
    except MemoryError:
        answer = {"error": "审查时内存超出上限，疑似恶意文件"}
    except RecursionError:
        answer = {"error": "文件结构嵌套过深，疑似恶意文件"}
    sys.stdout.write(json.dumps(answer, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())

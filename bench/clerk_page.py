"""How fast the clerk's 文书检查 page answers for one ordinary judgment.

    .venv/bin/python bench/clerk_page.py [--runs 11] [--pages 10]

A real collector (HTTPS, SQLite, its document workers) is started; a clerk
made with the CLI signs in and opens the page (which starts the workers).
Then, each ``--runs`` times, after a warm-up:

- page: POST the .docx judgment (``--pages`` pages of generated judgment text
  with names, phone numbers and ID numbers) to ``/console/doccheck`` and
  follow the redirect to the rendered result page: the wall time a clerk
  waits from pressing 检查 to the page with every finding;
- API: the same file to ``POST /api/v1/documents/check`` with a clerk API key;
- floors measured in the same run: the same file checked in this process by
  ``collector.doccheck.work.check`` (extract, scan, group, corrected copy,
  no HTTP, no worker), and ``GET /healthz`` over the same connection.

Prints medians and p90 in ms, the ratios to the floors, and the load average
before and after (on a shared machine wall time includes waiting for a core).
The target (issue 18) is under 500 ms for the page.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.policy.loader import load_policy_dir
from bench.documents import CHARS_PER_PAGE, judgment_lines
from collector.doccheck.work import check
from tests.agent.detectors.documents.corpus import Generator
from tests.agent.detectors.documents.docfiles import DocxContent, write_docx
from tests.e2e.harness import BIN, Collector

REPO = Path(__file__).resolve().parents[1]
PASSWORD = "bench clerk password"  # noqa: S105 (a throw-away collector)


def timed(runs: int, call: Callable[[], object]) -> list[float]:
    call()  # warm-up
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        out.append((time.perf_counter() - started) * 1000)
    return out


def line(label: str, values: list[float], floor: float | None = None) -> None:
    p90 = sorted(values)[max(0, int(len(values) * 0.9) - 1)]
    ratio = f"  {statistics.median(values) / floor:6.1f}× floor" if floor else ""
    print(f"{label:44s} median {statistics.median(values):7.1f} ms  p90 {p90:7.1f} ms{ratio}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--pages", type=int, default=10)
    args = parser.parse_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="clerk-bench-") as tmp:
        home = Path(tmp)
        lines = judgment_lines(Generator(seed=18), args.pages * CHARS_PER_PAGE)
        document = write_docx(home / "judgment.docx", DocxContent(lines))
        data = document.read_bytes()
        policy = load_policy_dir(REPO / "policies").section("documents")
        in_process = timed(args.runs, lambda: check(data, "judgment.docx", policy, None))
        outcome = check(data, "judgment.docx", policy, None)
        print(f"document: {args.pages} pages, {sum(len(x) + 1 for x in lines)} characters, "
              f"{len(data)} bytes, {len(outcome['findings'])} findings, "
              f"verdict {outcome['verdict']}")

        collector = Collector(home=home, database_url=f"sqlite:///{home / 'collector.db'}")
        collector.init()
        subprocess.run([str(BIN / "courtguard-collector"), "user", "create", "shuji",
                               "--role", "clerk", "--password-stdin"], env=collector.env(),
                              input=PASSWORD + "\n", capture_output=True, text=True, timeout=60,
                              check=True)
        key = collector.cli("apikey", "create", "--name", "bench", "--role", "clerk",
                            "--quiet").stdout.strip().splitlines()[-1]
        collector.start()
        try:
            with collector.http(timeout=120) as client:
                login = client.get("/console/login")
                token = re.search(r'name="csrf" value="([^"]+)"', login.text)
                assert token is not None
                client.post("/console/login", data={"username": "shuji", "password": PASSWORD,
                                                     "csrf": token.group(1)})
                page = client.get("/console/doccheck")
                csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
                assert csrf is not None

                def upload() -> None:
                    answer = client.post("/console/doccheck", data={"csrf": csrf.group(1)},
                                         files={"files": ("judgment.docx", data)},
                                         follow_redirects=True)
                    assert answer.status_code == 200 and "verdict-banner" in answer.text

                def api() -> None:
                    answer = client.post("/api/v1/documents/check",
                                         params={"name": "judgment.docx"}, content=data,
                                         headers={"Authorization": f"Bearer {key}"})
                    assert answer.status_code == 200 and answer.json()["verdict"]

                health = timed(args.runs, lambda: client.get("/healthz"))
                page_times = timed(args.runs, upload)
                api_times = timed(args.runs, api)
        finally:
            collector.stop()
    floor = statistics.median(in_process)
    line("floor: work.check in process (no HTTP)", in_process)
    line("floor: GET /healthz over HTTPS", health)
    line("page: POST /console/doccheck → result page", page_times, floor)
    line("API: POST /api/v1/documents/check", api_times, floor)
    print(f"page minus in-process check: {statistics.median(page_times) - floor:.1f} ms "
          f"(HTTPS, upload, worker hand-off, store, render)")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

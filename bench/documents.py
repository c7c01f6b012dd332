"""Throughput, latency and memory of the judgment-document checker.

    .venv/bin/python bench/documents.py [--docs 200] [--jobs N] [--baseline DIR [--rounds 3]]

1. One core: documents per second and median per-document latency (read,
   extract, normalise, check every rule) for a 10,000-character GB18030 .txt
   judgment and a 20-page .docx judgment, sequentially in this process.
2. All cores: the same files through ``ScanPool`` (the scan command's worker
   processes, with their limits and process start-up).
3. Memory: peak RSS of a fresh worker process scanning a 200-page .docx.

4. With ``--baseline DIR`` (another revision's ``agent/`` package, e.g. from
   ``git archive main agent | tar -x -C DIR``): that code and this one, one
   fresh process each, alternately for ``--rounds`` rounds on the same files,
   CPU time per document (extract + scan): a before/after comparison that a
   loaded machine affects alike.

Targets (issue 5): ≥ 100 .txt/s and ≥ 20 .docx/s on one core. Prints figures,
never fails on them; prints the machine's load average too, since on a shared
machine the wall-clock figures include waiting for a core.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.detectors.documents.checker.extract import extract_file
from agent.detectors.documents.checker.scanner import scan_parts
from agent.detectors.documents.checker.worker import ScanPool
from agent.policy.loader import load_policy_dir
from tests.agent.detectors.documents.corpus import Generator
from tests.agent.detectors.documents.docfiles import DocxContent, write_docx

REPO = Path(__file__).resolve().parents[1]
CHARS_PER_PAGE = 800  # a printed judgment page: 22 lines of 36 characters, roughly


def judgment_lines(generator: Generator, characters: int) -> list[str]:
    """Realistic judgment text of about ``characters`` characters (several cases' facts)."""
    lines: list[str] = []
    total = 0
    index = 0
    while total < characters:
        document = generator.criminal(index) if index % 2 == 0 else generator.civil(index)
        body = document.body if not lines else document.body[6:-3]  # one head, many fact sections
        lines += body
        total += sum(len(line) + 1 for line in body)
        index += 1
    return lines


def sequential(paths: list[Path], policy: object) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU seconds per document, one after the other in this process."""
    latencies, cpu = [], []
    for path in paths:
        started, started_cpu = time.perf_counter(), time.process_time()
        scan_parts(extract_file(path).parts, policy)  # type: ignore[arg-type]  # policy is passed as object
        latencies.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    return latencies, cpu


def report(label: str, measured: tuple[list[float], list[float]]) -> None:
    """Wall-clock figures, and CPU-time ones: on a shared machine the CPU time is what a
    core of its own would take (the wall clock includes waiting for a core)."""
    latencies, cpu = measured
    p95 = sorted(latencies)[int(len(latencies) * 0.95) - 1]
    print(
        f"{label:34s} {len(latencies) / sum(latencies):8.1f} docs/s on one core (wall), "
        f"{len(cpu) / sum(cpu):6.1f} docs/s per CPU-second; median latency "
        f"{statistics.median(latencies) * 1000:6.1f} ms wall, "
        f"{statistics.median(cpu) * 1000:6.1f} ms CPU (p95 wall {p95 * 1000:.1f} ms)"
    )


def pooled(label: str, paths: list[Path], policy: object, jobs: int) -> None:
    started = time.perf_counter()
    reports = list(ScanPool(policy, workers=jobs).scan([str(p) for p in paths]))  # type: ignore[arg-type]  # policy is passed as object
    elapsed = time.perf_counter() - started
    errors = sum(1 for r in reports if r["error"])
    print(
        f"{label:34s} {len(paths) / elapsed:8.1f} docs/s with {jobs} worker processes "
        f"({errors} errors, pool start-up included)"
    )


PEAK_RSS = """
import resource, sys
from pathlib import Path
from agent.detectors.documents.checker.extract import extract_file
from agent.detectors.documents.checker.scanner import scan_parts
from agent.policy.loader import load_policy_dir
policy = load_policy_dir(Path(sys.argv[2])).section("documents")
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
result = scan_parts(extract_file(Path(sys.argv[1])).parts, policy)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(before, after, len(result.findings))
"""


CPU_PER_DOCUMENT = """
import statistics, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from agent.detectors.documents.checker import scanner
from agent.detectors.documents.checker.extract import extract_file
from agent.policy.loader import load_policy_dir
assert scanner.__file__.startswith(sys.argv[1]), scanner.__file__
policy = load_policy_dir(Path(sys.argv[2])).section("documents")
for label, paths in (("txt", sys.argv[3].split(",")), ("docx", sys.argv[4].split(","))):
    for path in paths[:3]:
        scanner.scan_parts(extract_file(Path(path)).parts, policy)  # warm caches
    cpu = []
    for path in paths:
        started = time.process_time()
        scanner.scan_parts(extract_file(Path(path)).parts, policy)
        cpu.append(time.process_time() - started)
    print(label, len(cpu) / sum(cpu), statistics.median(cpu))
"""


def compare(baseline: Path, rounds: int, txt_paths: list[Path], docx_paths: list[Path]) -> None:
    """Documents per CPU-second of ``baseline``'s checker and this one, alternately."""
    figures: dict[str, list[tuple[float, float]]] = {}
    for _ in range(rounds):
        for label, root in (("baseline", baseline), ("this tree", REPO)):
            done = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    CPU_PER_DOCUMENT,
                    str(root.resolve()),
                    str(REPO / "policies"),
                    ",".join(map(str, txt_paths)),
                    ",".join(map(str, docx_paths)),
                ],
                capture_output=True,
                text=True,
                check=True,
                cwd=REPO,
            )
            for line in done.stdout.splitlines():
                kind, rate, median = line.split()
                figures.setdefault(f"{label} {kind}", []).append((float(rate), float(median)))
    for key, values in figures.items():
        rates = " / ".join(f"{rate:.1f}" for rate, _ in values)
        medians = " / ".join(f"{median * 1000:.2f}" for _, median in values)
        print(f"{key:16s} docs per CPU-second {rates}; median CPU ms {medians}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=200, help="documents per format")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--baseline", type=Path, help="another revision's tree holding agent/")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    policy = load_policy_dir(REPO / "policies").section("documents")
    generator = Generator(seed=5)
    with tempfile.TemporaryDirectory(prefix="courtguard-bench-") as tmp:
        home = Path(tmp)
        txt_paths, docx_paths = [], []
        for index in range(args.docs):
            text = "\n".join(judgment_lines(generator, 10_000))[:10_000]
            path = home / f"t{index}.txt"
            path.write_bytes(text.encode("gb18030"))
            txt_paths.append(path)
        for index in range(max(1, args.docs // 4)):
            lines = judgment_lines(generator, 20 * CHARS_PER_PAGE)
            docx_paths.append(
                write_docx(
                    home / f"d{index}.docx",
                    DocxContent(
                        lines,
                        table=[["证人", "王小明"]],
                        header="（2024）京0105刑初1号",
                        comment="核对",
                        title="判决书",
                        author="书记员",
                    ),
                )
            )
        big_lines = judgment_lines(generator, 200 * CHARS_PER_PAGE)
        big = write_docx(home / "big.docx", DocxContent(big_lines, header="判决书"))
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"load average before: {load} on {os.cpu_count()} cores")
        print(
            f"inputs: {len(txt_paths)} .txt of {len(text)} characters; {len(docx_paths)} .docx of "
            f"{sum(len(x) for x in lines)} characters (~20 pages, {docx_paths[0].stat().st_size} "
            f"bytes); 200-page .docx of {sum(len(x) for x in big_lines)} characters "
            f"({big.stat().st_size} bytes)"
        )
        sequential(txt_paths[:5], policy)  # warm imports and regex caches
        sequential(docx_paths[:2], policy)
        report(".txt 10k characters", sequential(txt_paths, policy))
        report(".docx 20 pages", sequential(docx_paths, policy))
        pooled(".txt 10k characters", txt_paths, policy, args.jobs)
        pooled(".docx 20 pages", docx_paths, policy, args.jobs)
        if args.baseline:
            compare(args.baseline, args.rounds, txt_paths, docx_paths)
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", PEAK_RSS, str(big), str(REPO / "policies")],
            capture_output=True,
            text=True,
            check=True,
            cwd=REPO,
        )
        elapsed = time.perf_counter() - started
        before_kb, after_kb, findings = (int(x) for x in done.stdout.split())
        print(
            f"{'200-page .docx':34s} peak RSS {after_kb / 1024:.1f} MB in a fresh process "
            f"({before_kb / 1024:.1f} MB after imports), {elapsed:.2f} s including start-up, "
            f"{findings} findings"
        )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

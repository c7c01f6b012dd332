# ruff: noqa: E501  (judgment text reads best on one line)
"""Wall time of ``courtguard-agent scan`` on one ordinary judgment, against floors.

    .venv/bin/python bench/documents_startup.py [--runs 15] [--compare SRC_DIR]

Each figure is the median wall time of ``--runs`` fresh processes, after one
warm-up run so bytecode is cached, measured in the same run as its floors:

- floor ``python -c pass``: the interpreter alone;
- floor ``import pydantic, yaml``: the libraries every policy read needs;
- ``scan one.txt`` and ``scan one.docx`` (a two-page judgment with a phone
  number and a party's full name: exit status 1), policies given with
  ``--policy-dir`` and, for the .txt, without it (agent.toml's default, then
  the policies shipped with the package).

``--compare SRC_DIR`` measures another source tree the same way (for example
the previous release, unpacked with ``git archive``) by putting it first on
``PYTHONPATH``. Target (issue 18): under 0.5 s for one file. Prints figures,
never fails on them, and prints the load average: on a shared machine the
wall-clock figures include waiting for a core.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.agent.detectors.documents.docfiles import DocxContent, write_docx

REPO = Path(__file__).resolve().parents[1]
CLI = "import sys; from agent.cli import main; sys.exit(main())"
PARAGRAPHS = [
    "北京市朝阳区人民法院",
    "民事判决书",
    "(2024)京0105民初1号",
    "原告张建国，男，1980年1月1日出生，汉族，住北京市朝阳区。",
    "被告钱某，女，1985年2月3日出生，汉族。",
    "原告张建国与被告钱某买卖合同纠纷一案，本院于2024年1月5日立案后，依法适用简易程序，公开开庭进行了审理。",
    *["原告张建国向本院提出诉讼请求：判令被告支付货款及利息。事实和理由：双方签订买卖合同，原告依约供货，被告未付款。"] * 20,
    "被告钱某的联系电话13812345678。",
    *["本院认为，当事人应当按照约定全面履行自己的义务。被告未按约定支付货款，应当承担继续履行及赔偿损失的违约责任。"] * 20,
    "审判员  孙立",
    "书记员  周敏",
]


def median_wall(
    command: list[str], runs: int, cwd: str, env: dict[str, str] | None = None
) -> tuple[float, float]:
    """Median wall time and median CPU time (user + system, with every child it waited for)."""
    # Warm the bytecode cache. The working directory is not the checkout: ``python -c`` puts
    # it first on sys.path, which would shadow a tree given with --compare.
    subprocess.run(command, capture_output=True, check=False, env=env, cwd=cwd)
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(command, capture_output=True, check=False, env=env, cwd=cwd)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--compare", type=Path, metavar="SRC_DIR",
                        help="another source tree to measure the same way (e.g. the last release)")
    args = parser.parse_args()
    python = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        txt = Path(tmp) / "one.txt"
        txt.write_text("\n".join(PARAGRAPHS) + "\n")
        docx = write_docx(Path(tmp) / "one.docx", DocxContent(PARAGRAPHS))
        policies = str(REPO / "policies")
        print(f"load average before: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} "
              f"{os.getloadavg()[2]:.2f}; {args.runs} runs each, median wall time")
        floor, floor_cpu = median_wall([python, "-c", "pass"], args.runs, tmp)
        libraries, libraries_cpu = median_wall(
            [python, "-c", "import pydantic, yaml"], args.runs, tmp
        )
        print(f"  floor  python -c pass                   {floor:6.3f} s wall "
              f"{floor_cpu:6.3f} s CPU")
        print(f"  floor  import pydantic, yaml            {libraries:6.3f} s wall "
              f"{libraries_cpu:6.3f} s CPU")
        trees = [("this tree", REPO)]
        if args.compare is not None:
            trees.append((str(args.compare), args.compare.resolve()))
        for label, tree in trees:
            env = {**os.environ, "PYTHONPATH": str(tree)}
            cases = {
                "scan one.txt --policy-dir": [python, "-c", CLI, "scan", "--policy-dir", policies,
                                              str(txt)],
                "scan one.docx --policy-dir": [python, "-c", CLI, "scan", "--policy-dir",
                                               policies, str(docx)],
                "scan one.txt (default policies)": [python, "-c", CLI, "scan", str(txt)],
            }
            print(f"{label}:")
            for name, command in cases.items():
                wall, cpu = median_wall(command, args.runs, tmp, env)
                print(f"  {name:34s} {wall:6.3f} s wall {cpu:6.3f} s CPU "
                      f"= {wall / floor:5.1f}x python -c pass")
        print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()

"""print_table lines columns up in terminal columns, where a Chinese character takes two."""

from __future__ import annotations

import pytest

from collector.cli.table import display_width, print_table


def test_display_width_counts_wide_characters_twice() -> None:
    assert display_width("ws-1") == 4
    assert display_width("隔离中") == 6
    assert display_width("（北京时间）") == 12  # fullwidth brackets are wide too
    assert display_width("a中b") == 4


def test_chinese_cells_line_up(capsys: pytest.CaptureFixture[str]) -> None:
    print_table([["1", "隔离中", "ws-1"], ["22", "pending", "主机甲"]], ["编号", "状态", "主机"])
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "编号  状态     主机",
        "1     隔离中   ws-1",
        "22    pending  主机甲",
    ]
    # every column starts at the same terminal column on every line
    starts = {tuple(display_width(line[:line.index(cell)]) for cell in cells)
              for line, cells in zip(lines, (["状态", "主机"], ["隔离中", "ws-1"],
                                             ["pending", "主机甲"]), strict=True)}
    assert starts == {(6, 15)}

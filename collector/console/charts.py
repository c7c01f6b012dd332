"""Charts as geometry for the templates to draw as inline SVG (no script, no CDN).

The templates escape every label; these functions only compute rectangles.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

WIDTH: Final = 720
BAR_HEIGHT: Final = 22
LABEL_WIDTH: Final = 260
#: One colour per series, distinguishable in print as well.
PALETTE: Final = ("#b23a48", "#2f6690", "#3a7d44", "#8a6d3b", "#6c757d", "#5e4b8b")


def bars(rows: Sequence[tuple[str, int]]) -> dict[str, Any]:
    """Horizontal bars, one per (label, value), scaled to the largest value."""
    top = max((value for _, value in rows), default=0) or 1
    span = WIDTH - LABEL_WIDTH - 60
    items = [
        {"label": label, "value": value, "y": i * BAR_HEIGHT,
         "width": max(1, round(span * value / top)), "x": LABEL_WIDTH}
        for i, (label, value) in enumerate(rows)
    ]
    return {"width": WIDTH, "height": max(BAR_HEIGHT, len(rows) * BAR_HEIGHT), "items": items,
            "bar_height": BAR_HEIGHT - 4, "label_width": LABEL_WIDTH}


def stacked_days(days: Sequence[str], series: Mapping[str, Sequence[int]],
                 names: Mapping[str, str]) -> dict[str, Any]:
    """Vertical bars per day, each stacked by series (kind family)."""
    height, bottom = 200, 30
    totals = [sum(values[i] for values in series.values()) for i in range(len(days))]
    top = max(totals, default=0) or 1
    step = min(60, max(8, (WIDTH - 40) // max(1, len(days))))  # a lone day is no wall
    rects: list[dict[str, Any]] = []
    for i, day in enumerate(days):
        y = height - bottom
        for j, (name, values) in enumerate(series.items()):
            h = round((height - bottom - 10) * values[i] / top)
            if h:
                y -= h
                rects.append({"x": 40 + i * step, "y": y, "w": step - 2, "h": h,
                              "fill": PALETTE[j % len(PALETTE)],
                              "title": f"{day} {names.get(name, name)}: {values[i]}"})
    labels = [{"x": 40 + i * step, "text": day[5:]} for i, day in enumerate(days)
              if len(days) <= 10 or i % 5 == 0]
    legend = [{"name": names.get(name, name), "fill": PALETTE[j % len(PALETTE)]}
              for j, name in enumerate(series)]
    return {"width": max(WIDTH, 40 + len(days) * step), "height": height, "rects": rects,
            "labels": labels, "legend": legend, "top": top, "baseline": height - bottom}


def daily_bars(days: Sequence[str], values: Sequence[int], width: int = 330,
               height: int = 90) -> dict[str, Any]:
    """A small vertical bar per day (a pillar's trend on the overview), scaled to the largest."""
    bottom = 14
    top = max(values, default=0) or 1
    step = max(2, (width - 30) // max(1, len(days)))
    bars_: list[dict[str, Any]] = []
    for i, (day, value) in enumerate(zip(days, values, strict=True)):
        h = round((height - bottom - 4) * value / top)
        bars_.append({"x": 28 + i * step, "y": height - bottom - h, "w": max(1, step - 1),
                      "h": h, "title": f"{day}: {value}"})
    last = len(days) - 1
    labels = [{"x": 28 + i * step + (step if i == last else 0), "text": day[5:],
               "anchor": "end" if i == last and i else "start"}
              for i, day in enumerate(days) if i in (0, len(days) // 2, last)]
    return {"width": width, "height": height, "bars": bars_, "labels": labels, "top": max(
        values, default=0), "baseline": height - bottom}

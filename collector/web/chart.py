"""A bar chart as inline SVG geometry, computed on the server (no scripts on the page).

The y-axis is labelled in money from zero to a round top, so one day of data reads as an
amount, not as a bar of arbitrary height.
"""

from __future__ import annotations

from typing import Any

WIDTH, HEIGHT, PAD, LEFT = 600, 160, 20, 80


def _round_top(value: int) -> int:
    """The smallest 1, 2 or 5 times a power of ten (in yuan) at or above ``value`` fen."""
    if value <= 0:
        return 100
    step = 100
    while True:
        for factor in (1, 2, 5):
            if step * factor >= value:
                return step * factor
        step *= 10


def _top(points: list[dict[str, Any]], value: str) -> int:
    return _round_top(max((int(p[value]) for p in points), default=0))


def bars(points: list[dict[str, Any]], value: str = "amount") -> list[dict[str, Any]]:
    """One rectangle per point, scaled to the axis top: ``x``, ``y``, ``w``, ``h``, ``label``.

    :param points: dicts with ``day`` and ``value``
    """
    if not points:
        return []
    top = _top(points, value)
    step = (WIDTH - LEFT - PAD) / len(points)
    out = []
    for i, point in enumerate(points):
        height = round((HEIGHT - 2 * PAD) * int(point[value]) / top)
        out.append(
            {
                "x": round(LEFT + i * step + 1),
                "w": max(1, round(step - 2)),
                "y": HEIGHT - PAD - height,
                "h": height,
                "label": point["day"],
                "value": int(point[value]),
                "gaps": point.get("gaps", 0),
            }
        )
    return out


def ticks(points: list[dict[str, Any]], value: str = "amount") -> list[dict[str, Any]]:
    """The y-axis: zero, half and the top, each with its ``y`` and money ``value`` (fen)."""
    top = _top(points, value)
    return [
        {
            "x": LEFT,
            "y": HEIGHT - PAD - round((HEIGHT - 2 * PAD) * part / 2),
            "value": top * part // 2,
        }
        for part in (0, 1, 2)
    ]

"""A bar chart as inline SVG geometry, computed on the server (no scripts on the page)."""

from __future__ import annotations

from typing import Any

WIDTH, HEIGHT, PAD = 600, 160, 20


def bars(points: list[dict[str, Any]], value: str = "amount") -> list[dict[str, Any]]:
    """One rectangle per point, scaled to the tallest: ``x``, ``y``, ``w``, ``h``, ``label``.

    :param points: dicts with ``day`` and ``value``
    """
    if not points:
        return []
    top = max(int(p[value]) for p in points) or 1
    step = (WIDTH - 2 * PAD) / len(points)
    out = []
    for i, point in enumerate(points):
        height = round((HEIGHT - 2 * PAD) * int(point[value]) / top)
        out.append(
            {"x": round(PAD + i * step + 1), "w": max(1, round(step - 2)),
             "y": HEIGHT - PAD - height, "h": height, "label": point["day"],
             "value": int(point[value]), "gaps": point.get("gaps", 0)}
        )  # fmt: skip
    return out

"""Geometry of the report's charts, as plain data the SVG templates draw.

Every label is measured (an estimate of DejaVu Sans widths: no font engine at hand) so that
labels get the room they need: family names take as many header rows as it takes for none to
overlap, flag names are never cut, and row labels set the width of their column. The SVGs carry
a viewBox and scale to the width of the page or the HTML column.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

MAX_COLUMNS = 44
CELL = 12  # px, one matrix cell
FLAG_FONT = 8  # px, rotated flag names (monospace)
LABEL_FONT = 9  # px, row labels
FAMILY_FONT = 8  # px, family names (bold)
FAMILY_ROW = 11  # px per row of family names
ROTATION = 60  # degrees the flag names are turned
BAR_HEIGHT = 18
BAR_GAP = 6


def text_width(text: str, size: float, mono: bool = False, bold: bool = False) -> float:
    """Rendered width in px of ``text`` at ``size`` px: DejaVu Sans Mono is 0.602 em a character;
    DejaVu Sans averages 0.55 em for lower case and 0.68 em for capitals and digits (bold +8%)."""
    if mono:
        return len(text) * 0.602 * size
    width = sum(0.68 if (c.isupper() or c.isdigit()) else 0.32 if c in " .,;:()'|-" else 0.55 for c in text)
    return width * size * (1.08 if bold else 1.0)


@dataclass(frozen=True)
class Cell:
    x: int
    y: int
    present: bool
    title: str  # "P3 has avx512f"


@dataclass(frozen=True)
class Column:
    x: int  # centre
    flag: str


@dataclass(frozen=True)
class Group:
    x: int
    width: int
    name: str
    label_y: int  # the row its name is on, chosen so that no two names overlap


@dataclass(frozen=True)
class Row:
    y: int  # centre
    label: str


@dataclass(frozen=True)
class HeatMap:
    width: int
    height: int
    cell: int
    header: int
    label_width: int
    rows: tuple[Row, ...]
    columns: tuple[Column, ...]
    groups: tuple[Group, ...]
    cells: tuple[Cell, ...]


def _chunks(families: Sequence[tuple[str, Sequence[str]]]) -> list[list[tuple[str, list[str]]]]:
    """Split (family, flags) into blocks of at most MAX_COLUMNS, keeping families whole when they fit."""
    blocks: list[list[tuple[str, list[str]]]] = [[]]
    used = 0
    for family, flags in families:
        flags = list(flags)
        while flags:
            room = MAX_COLUMNS - used
            if len(flags) > room and used and len(flags) <= MAX_COLUMNS:
                blocks.append([])
                used, room = 0, MAX_COLUMNS
            part, flags = flags[:room], flags[room:]
            blocks[-1].append((family, part))
            used += len(part)
            if flags:
                blocks.append([])
                used = 0
    return [b for b in blocks if b]


def _family_rows(groups: list[tuple[int, str]]) -> tuple[list[int], int]:
    """A header row for each family name (x, name) such that names on one row do not overlap."""
    ends: list[float] = []  # right end of the last name on each row
    rows = []
    for x, name in groups:
        width = text_width(name, FAMILY_FONT, bold=True) + 6
        row = next((i for i, end in enumerate(ends) if end <= x), None)
        if row is None:
            ends.append(0)
            row = len(ends) - 1
        ends[row] = x + width
        rows.append(row)
    return rows, max(len(ends), 1)


def heat_maps(
    rows: Sequence[tuple[str, frozenset[str]]], families: Sequence[tuple[str, Sequence[str]]]
) -> list[HeatMap]:
    """Matrices of rows (label, flags it has) x flags grouped by family, one per block of columns."""
    label_width = math.ceil(max((text_width(label, LABEL_FONT) for label, _ in rows), default=40)) + 12
    maps = []
    for block in _chunks(families):
        columns, spans, x = [], [], label_width
        for family, flags in block:
            spans.append((x, len(flags) * CELL, family))
            for flag in flags:
                columns.append(Column(x + CELL // 2, flag))
                x += CELL
        family_rows, n_rows = _family_rows([(sx, name) for sx, _, name in spans])
        longest = max(text_width(c.flag, FLAG_FONT, mono=True) for c in columns)
        rise = math.ceil(longest * math.sin(math.radians(ROTATION))) + 6
        header = n_rows * FAMILY_ROW + 4 + rise
        groups = tuple(Group(sx, width, name, 10 + row * FAMILY_ROW) for (sx, width, name), row in zip(spans, family_rows))
        # Rotated names lean right: the last one needs room past the last column.
        reach = x + math.ceil(longest * math.cos(math.radians(ROTATION)))
        family_end = max(sx + text_width(name, FAMILY_FONT, bold=True) + 6 for sx, _, name in spans)
        placed_rows, cells = [], []
        for index, (label, has) in enumerate(rows):
            y = header + index * CELL
            placed_rows.append(Row(y + CELL // 2, label))
            for column in columns:
                present = column.flag in has
                verb = "has" if present else "lacks"
                cells.append(Cell(column.x - CELL // 2, y, present, f"{label.split(' ')[0]} {verb} {column.flag}"))
        maps.append(
            HeatMap(
                width=math.ceil(max(reach, family_end)) + 8,
                height=header + len(rows) * CELL + 4,
                cell=CELL,
                header=header,
                label_width=label_width,
                rows=tuple(placed_rows),
                columns=tuple(columns),
                groups=groups,
                cells=tuple(cells),
            )
        )
    return maps


@dataclass(frozen=True)
class Bar:
    y: int
    width: int
    label: str
    value: int
    note: str


@dataclass(frozen=True)
class BarChart:
    width: int
    height: int
    label_width: int
    plot_width: int
    bars: tuple[Bar, ...]
    maximum: int


def bar_chart(items: Sequence[tuple[str, int, str]], plot_width: int = 260) -> BarChart:
    """Horizontal bars: (label, value, note printed after the bar), every label and note measured."""
    maximum = max((value for _, value, _ in items), default=0) or 1
    label_width = math.ceil(max((text_width(label, LABEL_FONT) for label, _, _ in items), default=40)) + 12
    bars, right = [], 0.0
    for index, (label, value, note) in enumerate(items):
        y = index * (BAR_HEIGHT + BAR_GAP) + 4
        width = round(plot_width * value / maximum)
        bars.append(Bar(y, width, label, value, note))
        tail = f"{value} — {note}" if note else str(value)
        right = max(right, label_width + max(width, 1) + 6 + text_width(tail, LABEL_FONT))
    height = len(items) * (BAR_HEIGHT + BAR_GAP) + 8
    return BarChart(math.ceil(max(right, label_width + plot_width)) + 8, height, label_width, plot_width,
                    tuple(bars), maximum)

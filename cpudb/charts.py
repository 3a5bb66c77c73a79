"""Geometry of the report's charts, as plain data the SVG templates draw.

The flag matrix is split into blocks of at most MAX_COLUMNS flags, cut at family
boundaries where possible, so each block stays readable on an A4 or Letter page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

MAX_COLUMNS = 44
CELL = 12  # px, one matrix cell
LABEL_WIDTH = 190  # px, room for row labels
HEADER_HEIGHT = 128  # px, family names (two staggered rows) and rotated flag names
FLAG_CHARS = 18
ROW_LABEL_CHARS = 34


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
    label_y: int  # staggered, so names of narrow neighbours do not collide


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
    rows: tuple[Row, ...]
    columns: tuple[Column, ...]
    groups: tuple[Group, ...]
    cells: tuple[Cell, ...]


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


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


def heat_maps(
    rows: Sequence[tuple[str, frozenset[str]]], families: Sequence[tuple[str, Sequence[str]]]
) -> list[HeatMap]:
    """Matrices of rows (label, flags it has) x flags grouped by family, one per block of columns."""
    maps = []
    for block in _chunks(families):
        columns, groups, x = [], [], LABEL_WIDTH
        for index, (family, flags) in enumerate(block):
            groups.append(Group(x, len(flags) * CELL, family, 10 if index % 2 == 0 else 21))
            for flag in flags:
                columns.append(Column(x + CELL // 2, _short(flag, FLAG_CHARS)))
                x += CELL
        placed_rows, cells = [], []
        for index, (label, has) in enumerate(rows):
            y = HEADER_HEIGHT + index * CELL
            placed_rows.append(Row(y + CELL // 2, _short(label, ROW_LABEL_CHARS)))
            for column in columns:
                present = column.flag in has
                verb = "has" if present else "lacks"
                cells.append(Cell(column.x - CELL // 2, y, present, f"{label.split(' ')[0]} {verb} {column.flag}"))
        maps.append(
            HeatMap(
                width=x + 8,
                height=HEADER_HEIGHT + len(rows) * CELL + 4,
                cell=CELL,
                header=HEADER_HEIGHT,
                rows=tuple(placed_rows),
                columns=tuple(columns),
                groups=tuple(groups),
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


BAR_HEIGHT = 18
BAR_GAP = 6


def bar_chart(items: Sequence[tuple[str, int, str]], plot_width: int = 260, label_width: int = 200) -> BarChart:
    """Horizontal bars: (label, value, note printed after the bar)."""
    maximum = max((value for _, value, _ in items), default=0) or 1
    bars = []
    for index, (label, value, note) in enumerate(items):
        y = index * (BAR_HEIGHT + BAR_GAP) + 4
        bars.append(Bar(y, round(plot_width * value / maximum), _short(label, ROW_LABEL_CHARS), value, note))
    height = len(items) * (BAR_HEIGHT + BAR_GAP) + 8
    return BarChart(label_width + plot_width + 360, height, label_width, plot_width, tuple(bars), maximum)

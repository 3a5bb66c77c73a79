"""Print results as a table, JSON or CSV. A table for a terminal is drawn by rich (imported only
then); into a pipe or a file it is plain aligned columns, which grep, awk and diff read well and
which costs no import."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, TextIO

from cpudb.errors import terminal_safe

FORMATS = ("table", "json", "csv")


# Python names a flag's class ``klass``; JSON, the report and every other reader say ``class``.
_JSON_NAMES = {"klass": "class"}


def _record(value: Any) -> dict:
    """A dataclass as a JSON object, recursively, with its fields under their JSON names."""
    from dataclasses import fields

    return {_JSON_NAMES.get(f.name, f.name): to_jsonable(getattr(value, f.name)) for f in fields(value)}


def _is_record(value: Any) -> bool:
    """A dataclass instance; dataclasses is imported only when a value could be one (it costs an
    import of inspect, which the light commands do not otherwise pay)."""
    if "dataclasses" not in sys.modules:
        return False  # no dataclass exists yet, so this is none
    from dataclasses import is_dataclass

    return is_dataclass(value) and not isinstance(value, type)


def to_jsonable(value: Any) -> Any:
    if _is_record(value):
        return _record(value)
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [to_jsonable(v) for v in value]
        return sorted(items) if isinstance(value, (set, frozenset)) else items
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value


def _json_default(value: Any) -> Any:
    """What the C encoder cannot write itself: dataclasses, times, sets."""
    if _is_record(value):
        return _record(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def print_json(document: Any, out: TextIO | None = None) -> None:
    """Indented for a person at a terminal; compact (and encoded in C, 10x faster) for programs."""
    out = out or sys.stdout
    indent = 2 if out.isatty() else None
    import json  # imported by the commands that print JSON only

    out.write(json.dumps(document, indent=indent, default=_json_default))
    out.write("\n")


def print_csv(columns: Sequence[str], rows: Sequence[Sequence[Any]], out: TextIO | None = None) -> None:
    import csv

    writer = csv.writer(out or sys.stdout, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if v is None else _cell(v) for v in row])


def print_table(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    title: str | None = None,
    caption: str | None = None,
    out: TextIO | None = None,
    header: bool = True,
) -> None:
    out = out or sys.stdout
    if not _is_terminal(out):
        _plain_table(columns, rows, title, caption, out, header)
        return
    from rich.table import Table

    table = Table(title=title, caption=caption, title_justify="left", caption_justify="left", show_header=header)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*("" if v is None else _cell(v) for v in row))
    console(out).print(table)


def _is_terminal(out: TextIO) -> bool:
    try:
        return out.isatty()
    except (AttributeError, ValueError):
        return False


def _plain_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None, caption: str | None,
                 out: TextIO, header: bool) -> None:
    cells = [[terminal_safe("" if v is None else _cell(v)) for v in row] for row in rows]
    head = [list(columns)] if header else []
    widths = [max(map(len, column), default=0) for column in zip(*head, *cells)] or [0] * len(columns)
    lines = [title] if title else []
    for number, row in enumerate(head + cells):
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
        if header and number == 0:
            lines.append("  ".join("-" * width for width in widths))
    if caption:
        lines.append(caption)
    out.write("\n".join(lines) + "\n")


def print_text(text: str, out: TextIO | None = None) -> None:
    """Plain text; at a terminal through rich's wrapping (so long flag lists fit it)."""
    out = out or sys.stdout
    if not _is_terminal(out):
        out.write(text + "\n")
        return
    console(out).print(text, markup=False, highlight=False)


def console(out: TextIO | None = None):
    from rich.console import Console

    return Console(file=out or sys.stdout, highlight=False, soft_wrap=False)


def print_rows(
    fmt: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    title: str | None = None,
    out: TextIO | None = None,
) -> None:
    """One list of records in the chosen format."""
    if fmt == "json":
        print_json([dict(zip(columns, row)) for row in rows], out)
    elif fmt == "csv":
        print_csv(columns, rows, out)
    else:
        print_table(columns, rows, title=title, out=out)


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, (list, tuple)):
        return " ".join(str(v) for v in value)
    return str(value)

"""The lines of an emitted configuration that its consumer reads: comments dropped, continuations joined."""

from __future__ import annotations

import re

_XML_COMMENT = re.compile(r"<!--.*?-->\n?", re.S)


def body(text: str) -> list[str]:
    """Drop ``#`` lines and XML comments (which may span lines), join shell backslash-newlines
    and oslo.config continuation lines (indented) onto the line they continue."""
    text = _XML_COMMENT.sub("", text).replace("\\\n", "")
    lines: list[str] = []
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        if lines and line[:1] in (" ", "\t") and not lines[-1].lstrip().startswith("<") and "=" in lines[-1]:
            lines[-1] = f"{lines[-1]} {line.strip()}"
        else:
            lines.append(line)
    return lines


def prose(text: str) -> str:
    """The whole text with line breaks as spaces and comment marks removed, for reading wrapped comments."""
    text = text.replace("\\\n", "")
    lines = (line.strip().removeprefix("#").removeprefix("<!--").removesuffix("-->").strip() for line in text.splitlines())
    return " ".join(line for line in lines if line)

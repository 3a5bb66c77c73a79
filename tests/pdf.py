"""Reading the reports' PDFs in tests: pypdf (a test dependency) always; poppler's tools when installed.

`make test` must pass with nothing but Python and WeasyPrint's libraries, so the default text
reader is pypdf; checks that need poppler's exact layout (pdftotext -layout) skip without it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pypdf
import pytest

PDFTOTEXT = shutil.which("pdftotext")
needs_pdftotext = pytest.mark.skipif(not PDFTOTEXT, reason="pdftotext (poppler-utils) is not installed")


def text(path: Path) -> str:
    """The PDF's text, page by page: pdftotext -layout where installed, else pypdf's layout mode."""
    if PDFTOTEXT:
        return subprocess.run([PDFTOTEXT, "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout
    reader = pypdf.PdfReader(str(path))
    return "\f".join(page.extract_text(extraction_mode="layout") for page in reader.pages)


def pages(path: Path) -> tuple[int, str]:
    """Page count and the first page's size in points ('595 x 842')."""
    reader = pypdf.PdfReader(str(path))
    box = reader.pages[0].mediabox
    return len(reader.pages), f"{round(float(box.width))} x {round(float(box.height))}"


def attachments(path: Path) -> dict[str, str]:
    """The files embedded in the PDF, by name."""
    reader = pypdf.PdfReader(str(path))
    return {name: data[0].decode("utf-8") for name, data in reader.attachments.items()}


def pdf_text_contains_all(path: Path, *wanted: str) -> list[str]:
    """The strings of ``wanted`` the PDF's text lacks (whitespace runs normalised)."""
    flat = re.sub(r"\s+", " ", text(path))
    return [w for w in wanted if re.sub(r"\s+", " ", w) not in flat]

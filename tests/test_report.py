"""The migration-readiness report: real HTML, real WeasyPrint PDFs read back with pdftotext."""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from conftest import FIXTURES, SAMPLE_FLEET
from cpudb.cli import main
from cpudb.report import short_cpu
from cpudb.synthetic import generate

PDFTOTEXT = shutil.which("pdftotext")
needs_pdftotext = pytest.mark.skipif(not PDFTOTEXT, reason="pdftotext (poppler-utils) is not installed")


def pdf_text(path: Path) -> str:
    return subprocess.run([PDFTOTEXT, "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout


def pdf_pages(path: Path) -> tuple[int, str]:
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True).stdout
    pages = int(re.search(r"Pages:\s+(\d+)", info).group(1))
    size = re.search(r"Page size:\s+(.*)", info).group(1)
    return pages, size


class Collector(HTMLParser):
    """Every tag and attribute of a document, and whether it parsed to the end."""

    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attributes += [(tag, name, value or "") for name, value in attrs]


@pytest.fixture(scope="module")
def sample_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    assert main(["report", "--dumps", str(SAMPLE_FLEET), "-o", str(out), "--name", "fleet"]) == 0
    return out / "fleet.html", out / "fleet.pdf"


@needs_pdftotext
def test_pdf_carries_the_model_every_extra_flag_and_the_nova_block(sample_report, capsys):
    _, pdf = sample_report
    text = pdf_text(pdf)
    main(["baseline", "--dumps", str(SAMPLE_FLEET), "--format", "json"])
    import json

    document = json.loads(capsys.readouterr().out)
    rec = document["recommended"]
    assert "1. Verdict: ready with warnings" in text
    assert rec["model"] == "Broadwell-v2" and "Broadwell-v2" in text
    words = set(re.findall(r"[\w.-]+", text))
    assert set(rec["extra_flags"]) <= words
    for line in ("[libvirt]", "cpu_mode = custom", "cpu_models = Broadwell-noTSX", "cpu_model_extra_flags = ibpb, pdpe1gb"):
        assert line in text
    assert re.search(r"page 1 of \d+", text)


@needs_pdftotext
def test_pdf_sections_appear_in_order(sample_report):
    text = pdf_text(sample_report[1])
    headings = [
        "1. Verdict", "2. Hosts by CPU profile", "3. Flags that differ", "4. What each profile gives up",
        "5. Model ranking", "6. Configuration", "7. Flags no guest CPU can carry", "8. Warnings",
        "9. Validation checklist", "Appendix: hosts and input dumps",
    ]
    positions = [text.index(h) for h in headings]
    assert positions == sorted(positions)
    assert "cpudb verify --guest test-guest.lscpu" in text


def test_html_parses_and_references_nothing_outside(sample_report):
    html = sample_report[0].read_text()
    parser = Collector()
    parser.feed(html)
    parser.close()
    assert parser.tags[0] == "html" and "svg" in parser.tags and "style" in parser.tags
    assert "script" not in parser.tags and "link" not in parser.tags and "img" not in parser.tags
    for tag, name, value in parser.attributes:
        if name in ("src", "href", "action") or (name == "xmlns" and tag != "svg"):
            raise AssertionError(f"external reference {tag} {name}={value}")
    assert not re.search(r"url\(|@import|https?://(?!www\.w3\.org/2000/svg)", html)


def test_a_hostile_host_name_is_escaped(tmp_path):
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    evil = "<script>alert(1)</script>"
    (dumps / "evil.lscpu").write_text(f"hostname: {evil}\n" + (FIXTURES / "amd-epyc7742-1.txt").read_text())
    shutil.copyfile(FIXTURES / "amd-epyc7763-1.txt", dumps / "milan.cpuinfo")
    out = tmp_path / "r.html"
    assert main(["report", "--dumps", str(dumps), "-o", str(out)]) == 0
    html = out.read_text()
    assert evil not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


@needs_pdftotext
def test_letter_paper_and_single_file_outputs(tmp_path):
    pdf = tmp_path / "r.pdf"
    assert main(["report", "--dumps", str(SAMPLE_FLEET), "@amd", "-o", str(pdf), "--paper", "Letter"]) == 0
    assert not (tmp_path / "r.html").exists()
    _, size = pdf_pages(pdf)
    assert size.startswith("612 x 792")


def test_report_output_must_be_html_pdf_or_folder(capsys, tmp_path):
    assert main(["report", "--dumps", str(SAMPLE_FLEET), "-o", str(tmp_path / "r.docx")]) == 2
    assert "the report is written as .html or .pdf, or into a folder" in capsys.readouterr().err


def test_report_is_written_atomically_and_readable_by_others(tmp_path):
    out = tmp_path / "r.html"
    out.write_text("previous report")
    assert main(["report", "--dumps", str(SAMPLE_FLEET), "-o", str(out)]) == 0
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert out.stat().st_mode & 0o044 == 0o044
    assert [p.name for p in tmp_path.iterdir()] == ["r.html"]


@pytest.mark.parametrize(
    ("name", "short"),
    [
        ("Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz", "Xeon Gold 6230"),
        ("AMD EPYC 7742 64-Core Processor", "EPYC 7742"),
        ("Intel(R) Xeon(R) CPU E5-2690 v4 @ 2.60GHz", "Xeon E5-2690 v4"),
        ("Hygon C86 7285H 32-core Processor", "Hygon C86 7285H"),
    ],
)
def test_short_cpu_names(name, short):
    assert short_cpu(name) == short


@pytest.mark.slow
@needs_pdftotext
def test_a_1000_host_fleet_renders_with_a_bounded_page_count(tmp_path):
    generate(1000, tmp_path / "dumps", seed=7)
    db = tmp_path / "fleet.duckdb"
    assert main(["ingest", "--quiet", "--db", str(db), str(tmp_path / "dumps")]) == 0
    assert main(["report", "--db", str(db), "-o", str(tmp_path / "out"), "--name", "big"]) == 0
    pages, _ = pdf_pages(tmp_path / "out" / "big.pdf")
    text = pdf_text(tmp_path / "out" / "big.pdf")
    main_part = text.split("Appendix: hosts and input dumps")[0]
    profiles = len(set(re.findall(r"^\s*P(\d+)\b", main_part, re.M)))
    assert profiles <= 60  # rows are CPU profiles, not the 1,000 hosts
    assert main_part.count("syn-") < 500  # hosts appear in the main part only as samples, warnings, outliers
    assert pages <= 60
    assert text.count("syn-") >= 1000  # the appendix lists every host

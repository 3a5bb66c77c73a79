"""The migration-readiness report: real HTML, real WeasyPrint PDFs read back (pypdf; pdftotext where installed)."""

from __future__ import annotations

import configparser
import csv
import json
import re
import shutil
from html.parser import HTMLParser

import pytest
import yaml
from defusedxml import ElementTree

import pdf
from conftest import FIXTURES, SAMPLE_FLEET
from cpudb.build.synthetic import generate
from cpudb.catalog.signatures import short_cpu
from cpudb.cli.main import main

needs_pdftotext = pdf.needs_pdftotext
CONFIG_FILES = ("nova.conf", "domain-cpu.xml", "qemu-cpu.txt", "cpu-models.conf", "kubevirt-cpu.yaml")


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
    return out / "fleet.html", out / "fleet.pdf", out / "fleet"


def test_pdf_carries_the_model_every_extra_flag_and_the_nova_block(sample_report, capsys):
    _, pdf_path, _ = sample_report
    text = pdf.text(pdf_path)
    main(["baseline", "--dumps", str(SAMPLE_FLEET), "--format", "json"])
    document = json.loads(capsys.readouterr().out)
    rec = document["recommended"]
    assert "1. Verdict: ready with warnings" in text
    assert rec["model"] == "Broadwell-v2" and "Broadwell-v2" in text
    words = set(re.findall(r"[\w.-]+", text))
    assert set(rec["extra_flags"]) <= words
    flat = " ".join(text.split())
    for line in ("[libvirt]", "cpu_mode = custom", "cpu_models = Broadwell-noTSX", "cpu_model_extra_flags = ibpb, pdpe1gb"):
        assert line in flat
    assert re.search(r"page 1 of \d+", text)


def _parse_configs(files: dict[str, str]) -> dict[str, object]:
    """Each configuration parsed the way its consumer reads it."""
    nova = configparser.ConfigParser(interpolation=None)
    nova.read_string(files["nova.conf"])
    qemu = [line for line in files["qemu-cpu.txt"].splitlines() if not line.startswith("#")]
    proxmox = [line for line in files["cpu-models.conf"].splitlines() if not line.startswith("#")]
    xml = ElementTree.fromstring(files["domain-cpu.xml"])
    return {
        "nova": {k: [i.strip() for i in v.split(",")] for k, v in nova["libvirt"].items()},
        "libvirt": (xml.get("check"), xml.findtext("model"),
                    [(f.get("policy"), f.get("name")) for f in xml.findall("feature")]),
        "qemu": "\n".join(qemu).replace("\\\n", ""),  # the shell removes backslash-newline
        "proxmox": proxmox,
        "kubevirt": yaml.safe_load(files["kubevirt-cpu.yaml"]),
    }


def test_the_config_files_beside_the_report_are_what_the_pdf_shows_and_carries(sample_report, capsys):
    _, pdf_path, folder = sample_report
    files = {name: (folder / name).read_text() for name in CONFIG_FILES}
    assert pdf.attachments(pdf_path) == files
    main(["baseline", "--dumps", str(SAMPLE_FLEET), "--format", "json"])
    config = json.loads(capsys.readouterr().out)["config"]
    keys = {"nova.conf": "nova", "domain-cpu.xml": "libvirt_xml", "qemu-cpu.txt": "qemu",
            "cpu-models.conf": "proxmox", "kubevirt-cpu.yaml": "kubevirt"}
    assert {name: config[key] for name, key in keys.items()} == files
    parsed = _parse_configs(files)
    assert parsed["libvirt"][0] == "partial" and parsed["qemu"].startswith("-cpu Broadwell-v2,")
    assert max(len(line) for text in files.values() for line in text.splitlines()
               if not line.lstrip().startswith("flags ")) <= 78


@needs_pdftotext
def test_configs_copied_from_the_pdf_parse_back_to_the_files(sample_report, tmp_path):
    """What a reader copies out of the PDF (pdftotext) parses to exactly what the files hold."""
    _, pdf_path, folder = sample_report
    files = {name: (folder / name).read_text() for name in CONFIG_FILES}
    copied = pdf.text(pdf_path).splitlines()  # pdftotext -layout keeps the indentation
    found = {}
    for name, text in files.items():
        lines = text.splitlines()
        heading = next(i for i, line in enumerate(copied) if line.rstrip().endswith(f"— {name}"))
        start = next(i for i, line in enumerate(copied) if i > heading and line.strip() == lines[0].strip())
        margin = len(copied[start]) - len(copied[start].lstrip())
        block = [line[margin:] for line in copied[start:start + len(lines)]]
        found[name] = "\n".join(block) + "\n"
    assert _parse_configs(found) == _parse_configs(files)
    # The one line no format can continue (Proxmox flags) is copied as one line.
    flags = next(line for line in files["cpu-models.conf"].splitlines() if line.lstrip().startswith("flags "))
    assert flags.strip() in [line.strip() for line in found["cpu-models.conf"].splitlines()]


def test_every_finding_is_said_once(sample_report):
    html = sample_report[0].read_text()
    cells = re.findall(r'<tr class="(?:blocker|risk|note)">\s*<td class="nowrap">\w+</td>\s*<td>(.*?)(?:<br>|</td>)', html, re.S)
    assert cells and len(cells) == len(set(cells))
    for text in cells:
        assert html.count(text) == 1, text  # not repeated in another section
    assert "TSX (hle rtm" not in html or html.count("hle rtm (TSX") == 1


def test_micro_architecture_comes_from_the_cpu_signature(tmp_path):
    index = {row["file"]: row for row in csv.DictReader((FIXTURES / "INDEX.tsv").open(), delimiter="\t")}
    out = tmp_path / "r.html"
    metal = [f for f, row in index.items() if row["is_vm_guest"].startswith("no") or "-vm-" not in f]
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    for name in metal:
        shutil.copyfile(FIXTURES / name, dumps / name)
    assert main(["report", "--dumps", str(dumps), "-o", str(out), "--allow-guest-dumps"]) == 0
    html = out.read_text()
    rows = re.findall(r'<td class="cpu-model"><strong>([^<]+)</strong>.*?<td class="generation">([^<]+)</td>', html, re.S)
    arch = {label: generation for label, generation in rows}
    from cpudb.inputs.parse import parse_file

    checked = 0
    for name in metal:
        generation = index[name]["generation"]
        if "QEMU" in generation:
            continue
        dump = parse_file(FIXTURES / name)
        label = f"{short_cpu(dump.model_name)}, stepping {dump.stepping}"
        assert label in arch, (name, label)
        first_word = re.split(r"[ (-]", generation)[0]
        assert first_word in arch[label], (name, generation, arch[label])
        assert "guessed" not in arch[label]
        checked += 1
    assert checked >= 16


def test_guest_dumps_mixed_into_a_hypervisor_pool_are_not_ready(tmp_path):
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    for name in ("amd-epyc7742-1.txt", "amd-epyc7v12-vm-1.txt"):
        shutil.copyfile(FIXTURES / name, dumps / name)
    out = tmp_path / "r.html"
    assert main(["report", "--dumps", str(dumps), "-o", str(out)]) == 0
    assert "Verdict: not ready" in out.read_text() and "--allow-guest-dumps" in out.read_text()
    assert main(["report", "--dumps", str(dumps), "-o", str(out), "--allow-guest-dumps"]) == 0
    assert "Verdict: ready" in out.read_text() and "Verdict: not ready" not in out.read_text()


def test_planned_hosts_are_marked_planned_everywhere(tmp_path):
    folder = tmp_path / "out"
    assert main(["report", "--dumps", str(SAMPLE_FLEET), "@amd", "ref:turin*8", "-o", str(folder), "--name", "plan"]) == 0
    html = (folder / "plan.html").read_text()
    verdict = html[html.index('id="verdict"'):html.index('id="hosts"')]
    assert "All 4 hosts can run guests" in verdict and "8 planned hosts (ref:turin ×8)" in verdict
    assert "not counted as ready" in verdict
    change = html[html.index('id="change"'):html.index('id="planning"')]
    assert "ref:turin" not in change  # not in the checklist or the migration tests
    retire = html[html.index("Retiring one CPU model"):html.index("Guest features per retire step")]
    assert "ref:turin" not in retire
    steps = html[html.index("Guest features per retire step"):html.index('id="drift"')]
    assert "(3 hosts left, 8 planned)" in steps and "11 hosts left" not in steps
    appendix = html[html.index('id="appendix"'):]
    line = next(line for line in appendix.splitlines() if line.startswith("ref:turin"))
    assert "planned: 8 hosts" in line and not re.search(r"[0-9a-f]{64}", line)
    assert len(re.findall(r"[0-9a-f]{64}", appendix)) == 4


def test_every_page_footer_places_the_page(sample_report):
    html = sample_report[0].read_text()
    footer = re.search(r'<p class="running-footer">(.*?)</p>', html).group(1)
    digest = re.search(r"[0-9a-f]{64}", html[html.index("Inputs"):]).group(0)
    assert footer.startswith("all hosts · ") and f"inputs {digest[:12]}" in footer
    text = pdf.text(sample_report[1])
    pages, _ = pdf.pages(sample_report[1])
    assert text.count(f"inputs {digest[:12]}") == pages


def test_the_input_digest_follows_the_target_and_options(tmp_path):
    digests = []
    for extra in ([], ["--target", "debian-12"], ["--pmu"]):
        out = tmp_path / f"r{len(digests)}.html"
        assert main(["report", "--dumps", str(SAMPLE_FLEET), "@amd", "-o", str(out), *extra]) == 0
        digests.append(re.search(r"inputs ([0-9a-f]{12})", out.read_text()).group(1))
    assert len(set(digests)) == 3


def test_pdf_sections_appear_in_order(sample_report):
    text = pdf.text(sample_report[1])
    headings = [
        "1. Verdict", "2. Hosts by CPU model", "3. Flags that differ", "4. What each CPU model gives up",
        "5. Model ranking", "6. Configuration", "7. Flags no guest CPU can carry", "8. Findings",
        "9. Change plan", "Rollback", "Sign-off", "10. Planning", "11. Drift", "Appendix: hosts and input dumps",
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


def test_letter_paper_and_single_file_outputs(tmp_path):
    out = tmp_path / "r.pdf"
    assert main(["report", "--dumps", str(SAMPLE_FLEET), "@amd", "-o", str(out), "--paper", "Letter"]) == 0
    assert [p.name for p in tmp_path.iterdir()] == ["r.pdf"]
    _, size = pdf.pages(out)
    assert size == "612 x 792"


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
def test_a_1000_host_fleet_report_is_by_cpu_model_and_says_each_fact_once(tmp_path):
    generate(1000, tmp_path / "dumps", seed=7)
    db = tmp_path / "fleet.duckdb"
    assert main(["ingest", "--quiet", "--db", str(db), str(tmp_path / "dumps")]) == 0
    assert main(["report", "--db", str(db), "-o", str(tmp_path / "out"), "--name", "big", "--allow-guest-dumps"]) == 0
    pages, _ = pdf.pages(tmp_path / "out" / "big.pdf")
    html = (tmp_path / "out" / "big.html").read_text()
    main_part = html.split('id="appendix"')[0]
    models = re.findall(r'<table class="data models">.*?</table>', main_part, re.S)[0]
    assert len(re.findall(r"<tr[ >]", models)) <= 12  # one row per CPU model (and its header), not per variant
    findings = re.findall(r'<tr class="(?:blocker|risk|note)">\s*<td class="nowrap">\w+</td>\s*<td>(.*?)(?:<br>|</td>)', html, re.S)
    assert len(findings) == len(set(findings)) and len(findings) <= 20
    assert main_part.count("syn-") < 400  # hosts appear in the main part only as samples
    assert pages <= 45
    assert len(re.findall(r"^syn-\S+\s+P\d+ ", html.split('id="appendix"')[1], re.M)) == 1000  # the appendix lists every host

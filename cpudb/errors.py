"""Errors cpudb reports to the operator as one line and exit code 2."""


def terminal_safe(text: object) -> str:
    """``text`` with every character a terminal would act on or hide (control, bidirectional
    override, zero-width, line breaks) written as its escape, so one message stays one honest line."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


class CpudbError(Exception):
    """Base of every error caused by input or environment rather than by a bug."""

    exit_code = 2

    def lines(self) -> list[str]:
        """The message as the lines to print, each safe for a terminal: file and host names in it
        come from the operator's fleet and may hold anything."""
        return [terminal_safe(str(self))]


class DumpParseError(CpudbError):
    """A dump file cannot be read as any supported format."""

    def __init__(self, source: str, problem: str, line: int | None = None):
        self.source = source
        self.problem = problem
        self.line = line
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {problem}")

    def __reduce__(self):  # a worker process raises it; the parent must rebuild it
        return type(self), (self.source, self.problem, self.line)


class IngestError(CpudbError):
    """One or more dumps of an ingest run failed to parse; nothing was written."""

    def __init__(self, failures: list[DumpParseError]):
        self.failures = failures
        lines = [str(f) for f in failures]
        summary = f"{len(failures)} dump(s) failed to parse, nothing was ingested (use --skip-bad to ingest the rest)"
        super().__init__("\n".join(lines + [summary]) if len(lines) > 1 else lines[0])

    def __reduce__(self):
        return type(self), (self.failures,)

    def lines(self) -> list[str]:
        lines = [line for failure in self.failures for line in failure.lines()]
        return lines + [str(self).splitlines()[-1]] if len(lines) > 1 else lines


class SelectionError(CpudbError):
    """A host selection names nothing, or names something unknown."""


class UnknownHostError(SelectionError):
    """A host name given explicitly is not in the database."""


class DatabaseError(CpudbError):
    """The database is missing, busy, or not a cpudb database."""


class DatabaseBusyError(DatabaseError):
    """Another cpudb process is writing to the same database."""


class CatalogError(CpudbError):
    """A catalog data file or a libvirt cpu_map is malformed."""


class UnknownModelError(CatalogError):
    """A CPU model name is not in the catalog."""


class UnknownFlagError(CatalogError):
    """A flag name is not known under any of its names."""


class RequirementError(CpudbError):
    """A --require'd flag is missing on some selected hosts."""


class OutputError(CpudbError):
    """An output path cannot be written."""

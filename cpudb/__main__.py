"""`python -m cpudb` and the `cpudb` command."""

import os
import signal


def _interrupted_early(signum, frame) -> None:
    # Ctrl-C while the command's modules load: nothing is open yet, so end at once, in one line.
    os.write(2, b"cpudb: interrupted\n")
    os._exit(130)


def run() -> None:
    signal.signal(signal.SIGINT, _interrupted_early)
    from cpudb.cli.main import entry_point

    entry_point()


if __name__ == "__main__":
    run()

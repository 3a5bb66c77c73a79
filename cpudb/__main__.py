from cpudb.cli import entry_point

entry_point()

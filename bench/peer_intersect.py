"""The peer of `cpudb ingest`: a bare Python script that reads every dump file once and intersects
their flags lines. It does no checking at all, so it is the floor a parser can approach."""

import os
import re
import sys

FLAGS = re.compile(rb"^\s*flags\s*:(.*)$", re.MULTILINE | re.IGNORECASE)
common = None
for folder in sys.argv[1:]:
    for name in os.listdir(folder):
        with open(os.path.join(folder, name), "rb") as handle:
            found = FLAGS.search(handle.read())
        if found:
            flags = set(found.group(1).split())
            common = flags if common is None else common & flags
print(len(common or ()))

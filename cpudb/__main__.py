import sys

from cpudb.cli import main

sys.exit(main(sys.argv[1:]))

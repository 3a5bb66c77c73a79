"""Stage: the catalog. Takes the shipped data files (flag dictionary, model versions, reference
CPUs, target stacks, libvirt maps, families, levels); returns them loaded and looked up. Reads
files only: no database, no dumps. Imports nothing of cpudb but the base modules."""

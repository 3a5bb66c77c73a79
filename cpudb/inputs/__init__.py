"""Stage: the inputs. Takes dump files (lscpu text and JSON, /proc/cpuinfo, flag lists, libvirt
XML, raw CPUID, collected bundles) and remote hosts (collect); returns HostDump records and
database rows. Imports the catalog (feature names) and the base modules only."""

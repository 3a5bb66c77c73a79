"""Build-time generators, run by `cpudb catalog build`, the benchmarks and the tests: the catalog
and reference CPUs from ../shared/reference, synthetic fleets. The runtime never imports them."""

"""Stage: the store. Takes parsed dumps and the catalog; keeps them in the DuckDB database
(all-or-nothing writes), selects hosts, runs named queries and remembers answers. Imports the
inputs and the catalog."""

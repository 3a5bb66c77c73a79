"""Stage: the analysis. Takes a database with selected hosts; returns answers as frozen
dataclasses: the baseline and its ranking, risks, plans, drift, guest verification. Imports the
store and the catalog; never an output."""

"""Stage: the outputs. Takes analysis results; returns text for people and programs: the five
platform configurations, the HTML and PDF report with its charts, tables, JSON and CSV."""

"""Cohorts on demand: strata of constrained phantom draws (spec, regions, draw, attributes, balance, run)."""

"""Orchestration: how the warehouse runs.

Owns the ``warehouse`` command line and the Dagster definitions that schedule,
check and lineage-track every stage. It may import every other package of the
project (it sits at the bottom of the data flow); nothing imports it.
"""

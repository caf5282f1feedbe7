"""Ingestion: everything up to and including the raw layer.

Owns the platform generator (the golden source database), the table specs,
PII rules and the dlt pipeline that lands source tables in the warehouse's
``raw`` schema. It imports nothing from the rest of the project: it is the top
of the data flow.
"""

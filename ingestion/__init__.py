"""Ingestion: everything up to and including the raw layer.

Owns the table specs (the source contract: every table's key, cursor, columns, money
column and PII rules), the masking rules and the dlt pipeline that lands source tables in
the warehouse's ``raw`` schema. It imports nothing from the rest of the project: it is the
top of the data flow.
"""

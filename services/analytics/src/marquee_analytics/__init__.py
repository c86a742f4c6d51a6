"""Aggregates for the admins' dashboards and reports."""

"""Netdonor Transaction Report: the report job's form."""

from webapp.reports.routes import bp

__all__ = ["bp"]

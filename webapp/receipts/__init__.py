"""Receipts: the receipt template, the receipts issued, and the receipt generators' forms."""

from webapp.receipts.routes import bp

__all__ = ["bp"]

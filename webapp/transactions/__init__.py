"""Transactions: the Transaction Data Import's upload and mapping, and the list of all transactions."""

from webapp.transactions.routes import bp

__all__ = ["bp"]

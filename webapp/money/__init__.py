"""Donations and receipts below the screens: receipt numbering and the receipt PDF (the job
types and the screens both use them)."""

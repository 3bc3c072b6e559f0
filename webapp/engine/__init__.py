"""The engine: run states, queueing, the runner and the reconciler. No request code here."""

"""Email: transports (outbox or SMTP), safe rendering of campaigns, signed tracking links."""

"""Payment attempts, provider events, refunds and the ledger."""

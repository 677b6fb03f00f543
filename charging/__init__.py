"""OCS: Ro/Gy credit control over a durable ledger, CDR outbox and exporters."""

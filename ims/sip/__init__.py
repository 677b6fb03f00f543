"""SIP (RFC 3261): messages, URIs, framing, transactions, transports and dialogs."""

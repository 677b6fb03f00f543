"""asyncio Diameter node (RFC 6733): codec, dictionary, peers, routing."""

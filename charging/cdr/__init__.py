"""CDR pipeline: claim outbox rows, publish them to a sink (Kafka or JSON-lines files), mark them
sent only once the sink has made them durable; CLI export/replay helpers; partial-record policy.
"""

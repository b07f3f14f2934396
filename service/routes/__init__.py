"""One router per area: ingest, memories, users, respond, ops."""

"""Vector store adapters behind `memory.store.MemoryStore`."""

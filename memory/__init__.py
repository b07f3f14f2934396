"""heedful's memory layer: the domain model, stores, ingestion stream, extraction, embeddings and LLM clients.

This package imports neither the stage packages (`verifier`, `selector`) nor `service`.
"""

"""heedful's API service: the composition root that wires memory, verifier and selector together."""

"""Adapters: the ports of `shared.ports` for real backends. Heavy SDKs are imported inside them."""

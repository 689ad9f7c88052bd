"""Owns media handling the gateway needs without heavy dependencies (type sniffing from magic bytes)."""

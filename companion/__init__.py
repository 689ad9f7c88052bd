"""Companion app: movie recommendations and FAQ answering (its own ASGI process; may import models/)."""

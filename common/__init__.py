"""Pure leaf modules shared by every layer: media sniffing and media settings. No I/O, no heavy imports.

They live here, not in service/core, because both the torch-free gateway and the inference layer (models/) need
them, and the layer rules forbid models/ from importing service/ and service/ from importing models/.
"""

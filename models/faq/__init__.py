"""FAQ answering: FAQ files, sentence embeddings, pure top-k search with a confidence fallback; no HTTP/Redis."""

"""Movie recommenders (content TF-IDF, user-based Pearson kNN, biased MF) and their evaluation; no HTTP/Redis."""

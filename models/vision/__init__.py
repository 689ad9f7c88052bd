"""Image and video moderation: safe decoding, frame sampling, hashing, ONNX classifiers, scoring, segments.

Importing this package is cheap; heavy modules (cv2, onnxruntime) load only when their submodule is imported.
"""

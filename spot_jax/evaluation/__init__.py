"""Metrics and postprocessors shared by the seqio tasks (free of TensorFlow imports)."""

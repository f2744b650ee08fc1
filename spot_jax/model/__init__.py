"""Frozen T5 v1.1 / LM-adapted encoder-decoder in Flax, its configs and checkpoint readers."""

"""SPoT transfer: prompt library, similarity, retrieval and the cross-model projector."""

"""SPoT soft prompt transfer on a frozen T5 v1.1 model."""

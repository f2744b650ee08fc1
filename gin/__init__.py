"""Shipped gin configuration files (installed as spot_jax.gin)."""

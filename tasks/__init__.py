"""seqio task and mixture registrations (installed as spot_jax.tasks)."""

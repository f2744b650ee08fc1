"""seqio tasks and mixtures of SPoT (installed as `spot_jax.tasks`).

`import spot_jax.tasks.all` registers everything with T5's default vocabulary;
`spot_jax.tasks.registration.register_all(vocabulary=..., prefix=...)` does it with
other settings. `spot_jax.tasks.names` lists the names without importing TensorFlow.
"""

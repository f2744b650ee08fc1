"""Importing this registers every task and mixture with T5's default vocabulary.

`import spot_jax.tasks.all` is the one line a trainer or tool needs; nothing is
downloaded until a dataset or the vocabulary is first used. For another vocabulary
or a name prefix call `spot_jax.tasks.registration.register_all(...)` instead.
"""
from spot_jax.tasks import registration

REGISTERED = registration.register_all()

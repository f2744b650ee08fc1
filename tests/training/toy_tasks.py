"""The offline toy tasks, importable by name (`TASK_MODULES`) from tests."""
from spot_jax.tasks.toy import register  # noqa: F401

register()

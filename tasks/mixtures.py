"""Example-proportional mixtures, rates min(n_train, 2^19) (SPoT section 2.1.3)."""
from spot_jax.tasks import names
from spot_jax.tasks import pipeline


def register(opts: pipeline.Options):
  mixtures = {
      names.GLUE_MIXTURE: names.GLUE_TASKS,
      names.SUPER_GLUE_MIXTURE: names.SUPER_GLUE_TASKS,
  }
  for mixture, task in names.SINGLE_SOURCE_MIXTURES.items():
    mixtures[mixture] = (task,)
  mixtures.update(names.FAMILY_MIXTURES)
  for mixture, tasks in mixtures.items():
    pipeline.add_mixture(opts.name(mixture), [opts.name(t) for t in tasks])
  return [opts.name(m) for m in mixtures]

"""Registered task and mixture names: the public interface, importable without TensorFlow.

Names carry the TFDS version they read (`_v200` = `glue/*:2.0.0`), as in the
prompt-tuning SPoT code. `register_all(prefix=...)` prepends `prefix` to every name;
the default registration (`import spot_jax.tasks.all`) uses no prefix.
"""
import collections

GLUE_VERSION = "2.0.0"
SUPER_GLUE_VERSION = "1.0.2"
C4_TFDS_NAME = "c4/en:3.1.0"

# The GLUE benchmark as SPoT counts it (8 tasks; WNLI and AX are extras below).
GLUE_CONFIGS = ("cola", "sst2", "mrpc", "qqp", "stsb", "mnli", "qnli", "rte")
GLUE_EXTRA_CONFIGS = ("wnli", "ax")
SUPER_GLUE_CONFIGS = ("boolq", "cb", "copa", "multirc", "record", "rte", "wic", "wsc")
SUPER_GLUE_EXTRA_CONFIGS = ("axb", "axg")


def glue_task(config: str) -> str:
  return f"spot_glue_{config}_v200"


def super_glue_task(config: str) -> str:
  # "wsc" reads the TFDS config `wsc.fixed`, in T5's simplified form (the referent as
  # target), which T5's SuperGLUE mixture and so SPoT train and score; "wsc_bool" is the
  # boolean form (`wsc text: ... * Tom * ... # he #` -> True/False), an extra.
  return f"spot_super_glue_{config}_v102"


C4 = "spot_c4_prefix_lm_v310"
DOC_NLI = "spot_doc_nli_v100"
YELP_POLARITY = "spot_yelp_polarity_reviews_v020"
SQUAD = "spot_mrqa_squad_v100"
DROP = "spot_drop_v200"
WINOGRANDE = "spot_winogrande_v120"
HELLASWAG = "spot_hellaswag_v110"
COSMOS_QA = "spot_cosmos_qa_v100"
RACE_MIDDLE = "spot_race_middle_v200"
RACE_HIGH = "spot_race_high_v200"
CXC = "spot_cxc_v100"
CR = "spot_cr_v100"

# SPoT Table 2, in the paper's order: paper name -> task name.
SOURCE_TASKS = collections.OrderedDict([
    ("C4", C4),
    ("DocNLI", DOC_NLI),
    ("Yelp-2", YELP_POLARITY),
    ("MNLI", glue_task("mnli")),
    ("QQP", glue_task("qqp")),
    ("QNLI", glue_task("qnli")),
    ("ReCoRD", super_glue_task("record")),
    ("CxC", CXC),
    ("SQuAD", SQUAD),
    ("DROP", DROP),
    ("SST-2", glue_task("sst2")),
    ("WinoGrande", WINOGRANDE),
    ("HellaSwag", HELLASWAG),
    ("MultiRC", super_glue_task("multirc")),
    ("CosmosQA", COSMOS_QA),
    ("RACE", RACE_MIDDLE),
])
TARGET_TASKS = collections.OrderedDict([
    ("BoolQ", super_glue_task("boolq")),
    ("CoLA", glue_task("cola")),
    ("STS-B", glue_task("stsb")),
    ("WiC", super_glue_task("wic")),
    ("CR", CR),
    ("MRPC", glue_task("mrpc")),
    ("RTE", super_glue_task("rte")),
    ("WSC", super_glue_task("wsc")),
    ("COPA", super_glue_task("copa")),
    ("CB", super_glue_task("cb")),
])
GLUE_TASKS = tuple(glue_task(c) for c in GLUE_CONFIGS)
SUPER_GLUE_TASKS = tuple(super_glue_task(c) for c in SUPER_GLUE_CONFIGS)
EXTRA_TASKS = (tuple(glue_task(c) for c in GLUE_EXTRA_CONFIGS)
               + tuple(super_glue_task(c) for c in SUPER_GLUE_EXTRA_CONFIGS)
               + (super_glue_task("wsc_bool"), RACE_HIGH))

# The 26 SPoT tasks plus the 16 benchmark tasks, each once.
CORE_TASKS = tuple(dict.fromkeys(
    list(SOURCE_TASKS.values()) + list(TARGET_TASKS.values())
    + list(GLUE_TASKS) + list(SUPER_GLUE_TASKS)))
ALL_TASKS = CORE_TASKS + EXTRA_TASKS

GLUE_MIXTURE = "spot_glue_v200_mix"
SUPER_GLUE_MIXTURE = "spot_super_glue_v102_mix"
# Single-task "mixtures" for the sources SPoT trains alone (Table 1).
SINGLE_SOURCE_MIXTURES = collections.OrderedDict([
    (f"{C4}_mix", C4),
    (f"{glue_task('mnli')}_mix", glue_task("mnli")),
    (f"{SQUAD}_mix", SQUAD),
])
ALL_MIXTURES = (GLUE_MIXTURE, SUPER_GLUE_MIXTURE) + tuple(SINGLE_SOURCE_MIXTURES)

# Example-proportional mixing cap K (SPoT section 2.1.3).
MIXING_RATE_MAXIMUM = 2**19

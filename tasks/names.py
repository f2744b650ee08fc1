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

# SPoT Table 1's source families beyond the 26 study tasks (Appendix B), and the TFDS
# tasks of Su et al.'s 17.
ANLI_ROUNDS = ("r1", "r2", "r3")


def anli_task(round_name: str) -> str:
  return f"spot_anli_{round_name}_v010"


SNLI = "spot_snli_v110"
SENTIMENT140 = "spot_sentiment140_v100"
GOEMOTIONS = "spot_goemotions_v010"
IMDB = "spot_imdb_reviews_v100"
MOVIE_RATIONALES = "spot_movie_rationales_v010"
MRQA_CONFIGS = ("news_qa", "trivia_qa", "search_qa", "hotpot_qa", "natural_questions")


def mrqa_task(config: str) -> str:
  return f"spot_mrqa_{config}_v100"


NQ_OPEN = "spot_natural_questions_open_v100"
PIQA = "spot_piqa_v100"
# Not in TFDS: read from local TSV files (tasks/local_files.py, docs/tasks.md).
ART = "spot_art_v100"  # αNLI
SOCIAL_IQA = "spot_social_iqa_v100"
LAPTOP = "spot_semeval14_laptop_v100"
RESTAURANT = "spot_semeval14_restaurant_v100"
TWEET_EVAL = "spot_tweet_eval_sentiment_v100"
ETHICS_DEONTOLOGY = "spot_ethics_deontology_v100"
ETHICS_JUSTICE = "spot_ethics_justice_v100"
LOCAL_TASKS = (CR, CXC, ART, SOCIAL_IQA, LAPTOP, RESTAURANT, TWEET_EVAL, ETHICS_DEONTOLOGY,
               ETHICS_JUSTICE)
# GEM (TFDS `gem/<config>:1.1.0`); its WikiLingua is the summarization task's.
GEM_CONFIGS = ("common_gen", "dart", "e2e_nlg", "schema_guided_dialog", "web_nlg_en",
               "wiki_auto_asset_turk", "xsum")


def gem_task(config: str) -> str:
  return f"spot_gem_{config}_v110"

# name -> (TFDS name, source language, target language), as T5's WMT tasks.
TRANSLATION = collections.OrderedDict([
    ("spot_wmt14_ende_v100", ("wmt14_translate/de-en:1.0.0", "en", "de")),
    ("spot_wmt14_enfr_v100", ("wmt14_translate/fr-en:1.0.0", "en", "fr")),
    ("spot_wmt16_enro_v100", ("wmt16_translate/ro-en:1.0.0", "en", "ro")),
])
# name -> (TFDS name, document field, summary field); WikiLingua (English) through GEM.
SUMMARIZATION = collections.OrderedDict([
    ("spot_aeslc_v100", ("aeslc:1.0.0", "email_body", "subject_line")),
    ("spot_billsum_v300", ("billsum:3.0.0", "text", "summary")),
    ("spot_cnn_dailymail_v340", ("cnn_dailymail:3.4.0", "article", "highlights")),
    ("spot_wiki_lingua_en_v110", ("gem/wiki_lingua_english_en:1.1.0", "source", "target")),
    ("spot_gigaword_v120", ("gigaword:1.2.0", "document", "summary")),
    ("spot_multi_news_v210", ("multi_news:2.1.0", "document", "summary")),
    ("spot_newsroom_v100", ("newsroom:1.0.0", "text", "summary")),
    ("spot_samsum_v100", ("samsum:1.0.0", "dialogue", "summary")),
    ("spot_xsum_v110", ("xsum:1.1.0", "document", "summary")),
])
FAMILY_TASKS = (tuple(anli_task(r) for r in ANLI_ROUNDS)
                + (SNLI, SENTIMENT140, GOEMOTIONS, IMDB, MOVIE_RATIONALES)
                + tuple(mrqa_task(c) for c in MRQA_CONFIGS) + (NQ_OPEN, PIQA)
                + tuple(TRANSLATION) + tuple(SUMMARIZATION)
                + tuple(gem_task(c) for c in GEM_CONFIGS)
                + (ART, SOCIAL_IQA, LAPTOP, RESTAURANT, TWEET_EVAL, ETHICS_DEONTOLOGY,
                   ETHICS_JUSTICE))

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
ALL_TASKS = CORE_TASKS + EXTRA_TASKS + FAMILY_TASKS

GLUE_MIXTURE = "spot_glue_v200_mix"
SUPER_GLUE_MIXTURE = "spot_super_glue_v102_mix"
# Single-task "mixtures" for the sources SPoT trains alone (Table 1).
SINGLE_SOURCE_MIXTURES = collections.OrderedDict([
    (f"{C4}_mix", C4),
    (f"{glue_task('mnli')}_mix", glue_task("mnli")),
    (f"{SQUAD}_mix", SQUAD),
])
# SPoT Table 1's family mixtures (Appendix B membership; docs/tasks.md says where each
# member comes from and what is not registered yet).
FAMILY_MIXTURES = collections.OrderedDict([
    ("spot_nli_mix", tuple(anli_task(r) for r in ANLI_ROUNDS) + (
        super_glue_task("cb"), DOC_NLI, glue_task("mnli"), glue_task("qnli"),
        glue_task("rte"), SNLI)),
    ("spot_paraphrase_mix", (CXC, glue_task("mrpc"), glue_task("qqp"), glue_task("stsb"))),
    ("spot_sentiment_mix", (CR, GOEMOTIONS, SENTIMENT140, glue_task("sst2"), YELP_POLARITY)),
    ("spot_mrqa_mix", (SQUAD,) + tuple(mrqa_task(c) for c in MRQA_CONFIGS)),
    ("spot_translation_mix", tuple(TRANSLATION)),
    ("spot_summarization_mix", tuple(SUMMARIZATION)),
    ("spot_rainbow_mix", (ART, COSMOS_QA, HELLASWAG, PIQA, SOCIAL_IQA, WINOGRANDE)),
    ("spot_gem_mix", tuple(gem_task(c) for c in GEM_CONFIGS) + ("spot_wiki_lingua_en_v110",)),
])
# SPoT's "All": C4 and every labeled dataset of the families, GLUE and SuperGLUE, each
# task once.
FAMILY_MIXTURES["spot_all_mix"] = tuple(dict.fromkeys(
    (C4,) + GLUE_TASKS + SUPER_GLUE_TASKS
    + tuple(t for members in FAMILY_MIXTURES.values() for t in members)))
ALL_MIXTURES = ((GLUE_MIXTURE, SUPER_GLUE_MIXTURE) + tuple(SINGLE_SOURCE_MIXTURES)
                + tuple(FAMILY_MIXTURES))

# Example-proportional mixing cap K (SPoT section 2.1.3).
MIXING_RATE_MAXIMUM = 2**19

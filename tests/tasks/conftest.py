"""Fixtures for the task tests: mocked TFDS metadata and rows, local-file tasks, the tasks
registered with the tiny vocabulary (tests/conftest.py's `tiny_vocab`)."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import mocked_tfds  # pylint: disable=g-import-not-at-top
import pytest

# Split sizes written into the mocked TFDS metadata (real sizes where known).
SPLIT_SIZES = {
    "glue/cola:2.0.0": {"train": 8551, "validation": 1043, "test": 1063},
    "glue/sst2:2.0.0": {"train": 67349, "validation": 872, "test": 1821},
    "glue/mrpc:2.0.0": {"train": 3668, "validation": 408, "test": 1725},
    "glue/qqp:2.0.0": {"train": 363846, "validation": 40430, "test": 390965},
    "glue/stsb:2.0.0": {"train": 5749, "validation": 1500, "test": 1379},
    "glue/mnli:2.0.0": {"train": 392702, "validation_matched": 9815,
                        "validation_mismatched": 9832, "test_matched": 9796,
                        "test_mismatched": 9847},
    "glue/qnli:2.0.0": {"train": 104743, "validation": 5463, "test": 5463},
    "glue/rte:2.0.0": {"train": 2490, "validation": 277, "test": 3000},
    "glue/wnli:2.0.0": {"train": 635, "validation": 71, "test": 146},
    "glue/ax:2.0.0": {"test": 1104},
    "super_glue/boolq:1.0.2": {"train": 9427, "validation": 3270, "test": 3245},
    "super_glue/cb:1.0.2": {"train": 250, "validation": 56, "test": 250},
    "super_glue/copa:1.0.2": {"train": 400, "validation": 100, "test": 500},
    "super_glue/multirc:1.0.2": {"train": 27243, "validation": 4848, "test": 9693},
    "super_glue/record:1.0.2": {"train": 100730, "validation": 10000, "test": 10000},
    "super_glue/rte:1.0.2": {"train": 2490, "validation": 277, "test": 3000},
    "super_glue/wic:1.0.2": {"train": 5428, "validation": 638, "test": 1400},
    "super_glue/wsc.fixed:1.0.2": {"train": 554, "validation": 104, "test": 146},
    "super_glue/axb:1.0.2": {"test": 1104},
    "super_glue/axg:1.0.2": {"test": 356},
    "doc_nli:1.0.0": {"train": 942314, "validation": 234258, "test": 267086},
    "yelp_polarity_reviews:0.2.0": {"train": 560000, "test": 38000},
    "mrqa/squad:1.0.0": {"train": 86588, "validation": 10507},
    "drop:2.0.0": {"train": 77409, "dev": 9536},
    "winogrande:1.2.0": {"train_xs": 160, "train_s": 640, "train_m": 2558,
                         "train_l": 10234, "train_xl": 40398, "validation": 1267,
                         "test": 1767},
    "hellaswag:1.1.0": {"train": 39905, "validation": 10042, "test": 10003},
    "cosmos_qa:1.0.0": {"train": 25262, "validation": 2985, "test": 6963},
    "race/middle:2.0.0": {"train": 6409, "dev": 368, "test": 362},
    "race/high:2.0.0": {"train": 18728, "dev": 1021, "test": 1045},
    "c4/en:3.1.0": {"train": 365000000, "validation": 364608},
    # SPoT Table 1's families and Su et al.'s tasks.
    "anli/r1:0.1.0": {"train": 16946, "validation": 1000, "test": 1000},
    "anli/r2:0.1.0": {"train": 45460, "validation": 1000, "test": 1000},
    "anli/r3:0.1.0": {"train": 100459, "validation": 1200, "test": 1200},
    "snli:1.1.0": {"train": 550152, "validation": 9842, "test": 9824},
    "sentiment140:1.0.0": {"train": 1600000, "test": 498},
    "goemotions:0.1.0": {"train": 43410, "validation": 5426, "test": 5427},
    "imdb_reviews:1.0.0": {"train": 25000, "test": 25000, "unsupervised": 50000},
    "movie_rationales:0.1.0": {"train": 1600, "validation": 200, "test": 199},
    "mrqa/news_qa:1.0.0": {"train": 74160, "validation": 4212},
    "mrqa/trivia_qa:1.0.0": {"train": 61688, "validation": 7785},
    "mrqa/search_qa:1.0.0": {"train": 117384, "validation": 16980},
    "mrqa/hotpot_qa:1.0.0": {"train": 72928, "validation": 5904},
    "mrqa/natural_questions:1.0.0": {"train": 104071, "validation": 12836},
    "natural_questions_open:1.0.0": {"train": 87925, "validation": 3610},
    "piqa:1.0.0": {"train": 16113, "validation": 1838},
    "wmt14_translate/de-en:1.0.0": {"train": 4508785, "validation": 3000, "test": 3003},
    "wmt14_translate/fr-en:1.0.0": {"train": 40836715, "validation": 3000, "test": 3003},
    "wmt16_translate/ro-en:1.0.0": {"train": 610320, "validation": 1999, "test": 1999},
    "aeslc:1.0.0": {"train": 14436, "validation": 1960, "test": 1906},
    "billsum:3.0.0": {"train": 18949, "test": 3269, "ca_test": 1237},
    "cnn_dailymail:3.4.0": {"train": 287113, "validation": 13368, "test": 11490},
    "gem/wiki_lingua_english_en:1.1.0": {"train": 99020, "validation": 13823, "test": 28614},
    "gigaword:1.2.0": {"train": 3803957, "validation": 189651, "test": 1951},
    "multi_news:2.1.0": {"train": 44972, "validation": 5622, "test": 5622},
    "newsroom:1.0.0": {"train": 995041, "validation": 108837, "test": 108862},
    "samsum:1.0.0": {"train": 14732, "validation": 818, "test": 819},
    "xsum:1.1.0": {"train": 203577, "validation": 11305, "test": 11301},
    "gem/common_gen:1.1.0": {"train": 67389, "validation": 993, "test": 1497},
    "gem/dart:1.1.0": {"train": 62659, "validation": 2768, "test": 6959},
    "gem/e2e_nlg:1.1.0": {"train": 33525, "validation": 4299, "test": 4693},
    "gem/schema_guided_dialog:1.1.0": {"train": 164982, "validation": 10000, "test": 10000},
    "gem/web_nlg_en:1.1.0": {"train": 35426, "validation": 1667, "test": 1779},
    "gem/wiki_auto_asset_turk:1.1.0": {"train": 483801, "validation": 20000, "test": 359},
    "gem/xsum:1.1.0": {"train": 23206, "validation": 1117, "test": 1166},
}


@pytest.fixture(scope="session")
def split_sizes():
  return SPLIT_SIZES


@pytest.fixture(scope="session")
def tfds_metadata(tmp_path_factory):
  """A data_dir of dataset_info.json files with SPLIT_SIZES, for mock_data(data_dir=)."""
  return mocked_tfds.write_split_metadata(tmp_path_factory.mktemp("tfds_metadata"), SPLIT_SIZES)


PREFIX = "tiny_"
CR_ROWS = ("index\ttext\tlabel\n"
           "0\tgreat camera , love it\t1\n"
           "1\tbattery died fast\t0\n"
           "2\t   \t1\n"               # empty text: dropped
           "3\tno label column\n"       # malformed: dropped
           "4\tlens is sharp\tmaybe\n"  # bad label: dropped
           "5\tworks as advertised\t1\n")
CXC_ROWS = ("index\tsentence1\tsentence2\tlabel\n"
            "0\ta dog runs\ta dog is running\t4.6\n"
            "1\ta cat sleeps\ta man cooks\t0.25\n"
            "2\ta bird\t\t3.0\n"           # empty sentence2: dropped
            "3\tone\ttwo\tthree\tfour\n")  # malformed: dropped


# The other local-file tasks: (header, two good rows, one malformed row) each; the
# expected inputs and targets of the good rows are pinned in task_registration_test.
LOCAL_ROWS = {
    "spot_art_v100": ("index\tobs1\tobs2\thyp1\thyp2\tlabel",
                      ["0\tTom was hungry.\tTom ate well.\tHe cooked.\tHe slept.\t1",
                       "1\tIt rained.\tThe street was dry.\tIt was a dream.\tA drain.\t2",
                       "2\tA\tB\tC\tD\t3"]),
    "spot_social_iqa_v100": ("index\tcontext\tquestion\tanswerA\tanswerB\tanswerC\tlabel",
                             ["0\tAnn lost.\tHow does Ann feel?\tsad\thappy\tbored\t1",
                              "1\tBo won.\tWhat next?\tcry\tcelebrate\tsleep\t2",
                              "2\tC\tQ\ta\tb\tc\t0"]),
    "spot_semeval14_laptop_v100": ("index\tsentence\taspect\tlabel",
                                   ["0\tThe screen is great.\tscreen\t2",
                                    "1\tThe battery is poor.\tbattery\t0",
                                    "2\tno label\tscreen"]),
    "spot_semeval14_restaurant_v100": ("index\tsentence\taspect\tlabel",
                                       ["0\tThe soup was fine.\tsoup\t1",
                                        "1\tThe staff were rude.\tstaff\t0",
                                        "2\tx\ty\t7"]),
    "spot_tweet_eval_sentiment_v100": ("index\ttext\tlabel",
                                       ["0\tlove this day\t2", "1\tok I guess\t1",
                                        "2\t \t0"]),
    "spot_ethics_deontology_v100": ("index\tscenario\texcuse\tlabel",
                                    ["0\tCan you drive me?\tNo, my car broke.\t1",
                                     "1\tCan you drive me?\tNo, it is Tuesday.\t0",
                                     "2\ta\tb\tyes"]),
    "spot_ethics_justice_v100": ("index\tscenario\tlabel",
                                 ["0\tI deserve pay since I worked.\t1",
                                  "1\tI deserve a prize since I am tall.\t0",
                                  "2\tshort row"]),
}


@pytest.fixture(scope="session")
def local_dirs(tmp_path_factory):
  """(CR dir, CxC dir, {task: dir} of the other local-file tasks)."""
  cr = tmp_path_factory.mktemp("cr")
  cxc = tmp_path_factory.mktemp("cxc")
  others = {}
  for name, (header, rows) in LOCAL_ROWS.items():
    others[name] = str(tmp_path_factory.mktemp(name))
  for split in ("train", "validation"):
    (cr / f"{split}.tsv").write_text(CR_ROWS)
    (cxc / f"{split}.tsv").write_text(CXC_ROWS)
    for name, (header, rows) in LOCAL_ROWS.items():
      with open(f"{others[name]}/{split}.tsv", "w") as f:
        f.write("\n".join([header] + rows) + "\n")
  return str(cr), str(cxc), others


# Each mocked split holds 8 rows. seqio's default buffer (1000, what users get) would hold
# 125 copies of them, preprocessed before the first batch and written whole into every
# checkpoint of the iterator: 60 s of the task checkpoint tests' 157 s of CPU. The same
# save and restore with the default buffer is pinned on GLUE RTE
# (task_checkpoint_test.py::test_the_default_shuffle_buffer_checkpoints_and_restores).
SHUFFLE_BUFFER_SIZE = 16


@pytest.fixture(scope="session")
def tiny_tasks(tiny_vocab, local_dirs):
  """Every task and mixture registered as tiny_<name> with the tiny vocabulary."""
  from spot_jax.tasks import registration  # pylint: disable=g-import-not-at-top
  cr_dir, cxc_dir, others = local_dirs
  return registration.register_all(
      tiny_vocab, prefix=PREFIX, cr_dir=cr_dir, cxc_dir=cxc_dir,
      local_dirs=others, shuffle_buffer_size=SHUFFLE_BUFFER_SIZE)


@pytest.fixture(scope="session")
def hand_rows():
  """`as_dataset_fn` for `tfds.testing.mock_data` with hand-written WSC/HellaSwag/RACE rows."""
  return mocked_tfds.hand_rows


@pytest.fixture(scope="session")
def checkpointable_rows():
  """`as_dataset_fn` for `tfds.testing.mock_data` whose datasets hold no stateful op."""
  return mocked_tfds.checkpointable_rows


@pytest.fixture(autouse=True)
def fresh_tfds_builders():
  """seqio memoizes TFDS builders per (name, data_dir) for the whole process; a builder
  made under one mock (with or without split sizes) must not leak into another test."""
  import seqio  # pylint: disable=g-import-not-at-top
  seqio.utils.LazyTfdsLoader._MEMOIZED_BUILDERS.clear()  # pylint: disable=protected-access
  yield
  seqio.utils.LazyTfdsLoader._MEMOIZED_BUILDERS.clear()  # pylint: disable=protected-access

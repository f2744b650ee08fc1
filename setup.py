"""spot_jax: SPoT soft prompt transfer on a frozen T5 v1.1 / LM-adapted model, in JAX."""
import setuptools

INSTALL_REQUIRES = [
    "jax==0.10.2",
    "jaxlib==0.10.2",
    "flax==0.12.8",
    "optax==0.2.8",
    "orbax-checkpoint==0.12.8",
    "gin-config==0.5.0",
    "seqio==0.0.20",
    "clu==0.0.12",
    "tensorflow==2.21.0",
    "tensorflow-text==2.21.1",
    "tensorflow-datasets==4.9.10",
    "sentencepiece==0.2.3",
    "tensorstore==0.1.86",
    "tensorboard==2.21.0",
    "msgpack==1.2.4",
    "safetensors==0.8.0",
    "numpy==2.4.6",
    # jax's and TensorFlow's dtype extensions (both accept >=0.5). 0.7.0's module registers
    # its NumPy ufunc loops one by one (PyUFunc_AddLoop/AddPromoter under py-spy): 0.8-1.2 s
    # of CPU at every import, in every process that imports jax; 0.6.0 takes 0.02-0.03 s
    # and has every dtype jax 0.10.2 and TensorFlow 2.21 name (docs/development.md).
    "ml_dtypes==0.6.0",
    "protobuf==7.36.2",
    "scipy==1.17.1",
    "scikit-learn==1.9.1",
    "matplotlib==3.11.2",
    "sacrebleu==2.6.0",  # BLEU as T5 scores translation
    "rouge-score==0.1.2",  # ROUGE as T5 scores summaries
]

# Accelerators: jax's own extras at the same jax version (CUDA 12 wheels, or libtpu).
CUDA_REQUIRES = ["jax[cuda12]==0.10.2"]
TPU_REQUIRES = ["jax[tpu]==0.10.2"]

# t5x's dependencies from the package registry. t5x itself and its two Git-only
# dependencies are installed by commit (README, "Training under T5X"); the tests use the
# pinned snapshots in ../shared/vendor when t5x is not installed.
T5X_REQUIRES = [
    "grain==0.2.12",
    "cached-property==2.0.1",
    "fiddle==0.3.1",
    "libcst==1.9.0",
    "graphviz==0.21",
]

TEST_REQUIRES = [
    "pytest==9.2.0",
    "pytest-xdist==3.8.0",  # the suite runs on every core (pytest.ini)
    "torch==2.13.0",  # exactly: a looser range pulls a multi-GB CUDA build
    "transformers==5.23.0",
    "peft==0.21.2",
    # JAX's compilation cache compresses with zstd when this is installed, zlib otherwise:
    # the suite's cache (tests/conftest.py) wrote a train step's 10 MB executable in 0.18 s
    # with zlib, most of the 11.4 s its 60 writes took in one full run.
    "zstandard==0.25.0",
]

# gin/'s folders (runs/, study/, ...), installed as spot_jax.gin.runs and so on.
GIN_FOLDERS = ["spot_jax.gin." + p for p in setuptools.find_namespace_packages(
    where="gin", exclude=["*__pycache__"])]

setuptools.setup(
    name="spot_jax",
    version="0.1.0",
    description="SPoT soft prompt transfer on frozen T5 v1.1 LM-adapted models (JAX/Flax).",
    python_requires=">=3.10",
    # tasks/ and gin/ live at the top of the repository but install under the
    # spot_jax namespace, so nothing generic is squatted in site-packages. Folders of data
    # (gin's, the embedded assets) are listed as packages too, as setuptools asks.
    packages=(setuptools.find_namespace_packages(include=["spot_jax", "spot_jax.*"],
                                                 exclude=["*.__pycache__"])
              + ["spot_jax.tasks", "spot_jax.gin"] + GIN_FOLDERS),
    package_dir={"spot_jax.tasks": "tasks", "spot_jax.gin": "gin"},
    package_data={"spot_jax.gin": ["*.gin"], **{folder: ["*.gin"] for folder in GIN_FOLDERS},
                  "spot_jax.embedded.assets": ["*.model"],
                  "spot_jax.embedded.assets.backbone": ["*"]},
    include_package_data=True,
    install_requires=INSTALL_REQUIRES,
    extras_require={"test": TEST_REQUIRES + T5X_REQUIRES, "t5x": T5X_REQUIRES,
                    "cuda": CUDA_REQUIRES, "tpu": TPU_REQUIRES},
)

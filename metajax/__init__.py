"""metajax: meta-learning (few-shot learning) as pure JAX functions.

Learners are NamedTuples of pure one-task functions (:class:`Learner`), episodes
are pytrees (:class:`Episode`), and one trainer (:func:`meta_train`) vmaps any
learner over a batch of tasks.

The package is laid out by the survey's architecture, so the folder tree says what
each piece is and which pieces may depend on which (each imports only from the lines
above it):

- ``core/``: what every learner shares: episodes and samplers, the ``Learner``
  interface and its one input-checking wrapper, losses, distances, argument checks,
  the learner registry, atomic file writes.
- ``nets/``: backbones (Conv-4, MLP, im2col convolutions), shared by every family.
- ``learners/metric``, ``learners/model``, ``learners/optimization``: one folder per
  family of the survey (metric-, model- and optimization-based). A family imports
  from ``core`` and ``nets`` only, never from another family; each folder's
  ``__init__`` holds its registry entries.
- ``datasets/``: loaders and samplers of real data. Named ``datasets`` rather than
  ``data`` because ``metajax.datasets`` has been public API since the first release.
- ``training/``: the one meta-training loop, evaluation, checkpoints, device meshes.
- ``cli.py``: a thin command line over the registry.

Everything public is exported here; the modules' paths are internal and may move.
"""

from metajax import datasets
from metajax.core.episodes import (
    Episode,
    EpisodeSampler,
    Split,
    pool_sampler,
    sample_batch,
    sample_episode,
)
from metajax.core.learner import Learner
from metajax.core.tracing import per_task_weights
from metajax.core.xla import compiler_options
from metajax.learners.metric.idemenet import idemenet
from metajax.learners.metric.matching import matching_networks
from metajax.learners.metric.protonet import protonet
from metajax.learners.metric.relation import relation_network
from metajax.learners.metric.siamese import AffineDistortion, pair_sampler, siamese
from metajax.learners.metric.tapnet import tapnet
from metajax.learners.model.mann import MemoryState, lstm_baseline, mann
from metajax.learners.model.metanet import meta_networks
from metajax.learners.model.sequence import Sequence, episode_sequence
from metajax.learners.model.snail import snail
from metajax.learners.optimization.anil import anil
from metajax.learners.optimization.finetune import finetune
from metajax.learners.optimization.imaml import imaml
from metajax.learners.optimization.inner_loop import (
    FirstOrder,
    Implicit,
    Unrolled,
    adapt,
    adapted_loss,
)
from metajax.learners.optimization.maml import fomaml, maml
from metajax.learners.optimization.metasgd import metasgd
from metajax.learners.optimization.reptile import reptile
from metajax.nets.backbones import Model, conv4, mlp
from metajax.training import distributed
from metajax.training.checkpoint import checkpoint_manager, restore_state, save_state
from metajax.training.distributed import replicate, task_mesh
from metajax.training.trainer import (
    Evaluation,
    NonFiniteError,
    TrainState,
    evaluate,
    init_state,
    is_transductive,
    make_evaluator,
    make_train_step,
    mean_ci95,
    meta_train,
)

__version__ = "0.1.0"

__all__ = [
    "AffineDistortion",
    "Episode",
    "EpisodeSampler",
    "Evaluation",
    "FirstOrder",
    "Implicit",
    "Learner",
    "MemoryState",
    "Model",
    "NonFiniteError",
    "Sequence",
    "Split",
    "TrainState",
    "Unrolled",
    "adapt",
    "adapted_loss",
    "anil",
    "checkpoint_manager",
    "compiler_options",
    "conv4",
    "datasets",
    "distributed",
    "episode_sequence",
    "evaluate",
    "finetune",
    "fomaml",
    "idemenet",
    "imaml",
    "init_state",
    "is_transductive",
    "lstm_baseline",
    "make_evaluator",
    "make_train_step",
    "maml",
    "mann",
    "matching_networks",
    "mean_ci95",
    "meta_networks",
    "meta_train",
    "metasgd",
    "mlp",
    "pair_sampler",
    "per_task_weights",
    "pool_sampler",
    "protonet",
    "relation_network",
    "replicate",
    "reptile",
    "restore_state",
    "sample_batch",
    "sample_episode",
    "save_state",
    "siamese",
    "snail",
    "tapnet",
    "task_mesh",
]

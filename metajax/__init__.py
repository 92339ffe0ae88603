"""metajax: meta-learning (few-shot learning) as pure JAX functions.

Learners are NamedTuples of pure one-task functions (:class:`Learner`), episodes
are pytrees (:class:`Episode`), and one trainer (:func:`meta_train`) vmaps any
learner over a batch of tasks.
"""

from metajax import datasets, distributed
from metajax.anil import anil
from metajax.checkpoint import checkpoint_manager, restore_state, save_state
from metajax.distributed import replicate, task_mesh
from metajax.episodes import (
    Episode,
    EpisodeSampler,
    Split,
    pool_sampler,
    sample_batch,
    sample_episode,
)
from metajax.finetune import finetune
from metajax.idemenet import idemenet
from metajax.imaml import imaml
from metajax.inner_loop import FirstOrder, Implicit, Unrolled, adapt, adapted_loss
from metajax.learner import Learner
from metajax.maml import fomaml, maml
from metajax.mann import MemoryState, lstm_baseline, mann
from metajax.matching import matching_networks
from metajax.metanet import meta_networks
from metajax.metasgd import metasgd
from metajax.models import Model, conv4, mlp
from metajax.protonet import protonet
from metajax.relation import relation_network
from metajax.reptile import reptile
from metajax.sequence import Sequence, episode_sequence
from metajax.siamese import AffineDistortion, pair_sampler, siamese
from metajax.snail import snail
from metajax.tapnet import tapnet
from metajax.trainer import (
    Evaluation,
    NonFiniteError,
    TrainState,
    evaluate,
    init_state,
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

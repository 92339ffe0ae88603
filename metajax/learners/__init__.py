"""Learners, one folder per family of the survey.

- ``metric``: learn an embedding and classify by distance to the support set
  (Siamese, Matching, Prototypical, Relation, TapNet, IDeMe-Net).
- ``model``: a network whose forward pass learns from the support set
  (MANN, SNAIL, Meta Networks).
- ``optimization``: adapt parameters by gradient steps on the support set and
  differentiate through the adaptation (MAML, FOMAML, iMAML, Reptile, Meta-SGD, ANIL,
  fine-tuning).

A family imports from ``metajax.core`` and ``metajax.nets`` only, never from another
family. Each family's ``__init__.py`` registers its learners in
:mod:`metajax.core.registry`; importing this package registers all of them, so adding a
learner is its own module plus one registry entry.
"""

from metajax.learners import metric, model, optimization

__all__ = ["metric", "model", "optimization"]

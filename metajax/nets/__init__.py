"""Backbones (Conv-4, MLP, im2col convolutions, batch-statistics norm) as pure
``Model(init, apply)`` pairs, shared by every family of learners."""

"""What every learner and the trainer share: episodes, the Learner interface, losses,
distances, argument checks, the learner registry and atomic file writes.

Nothing here imports a learner, a network or the trainer.
"""

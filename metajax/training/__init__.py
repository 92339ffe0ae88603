"""The one meta-training loop, evaluation, checkpoints and device meshes."""

"""Model-based learners: a network whose forward pass learns from the support set."""

"""Optimization-based learners: gradient steps on the support set, differentiated through."""

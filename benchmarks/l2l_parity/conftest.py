# l2l_train.py runs in the PyTorch venv (maml_speed/setup_env.sh), not metajax's: pytest's
# doctest collection must not import it.
collect_ignore = ["l2l_train.py"]

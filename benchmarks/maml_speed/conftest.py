# l2l_maml.py runs in the PyTorch venv (setup_env.sh), not metajax's: pytest's doctest
# collection must not import it.
collect_ignore = ["l2l_maml.py"]

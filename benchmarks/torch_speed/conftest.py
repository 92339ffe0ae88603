# The torch_*.py scripts run in the PyTorch venv (maml_speed/setup_env.sh), not metajax's:
# pytest's doctest collection must not import them.
collect_ignore = ["torch_protonet.py", "torch_lstm.py", "torch_timing.py"]

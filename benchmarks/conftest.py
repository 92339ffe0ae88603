# Benchmark folders are scripts, not packages: only their *_test.py files are tests.
collect_ignore_glob = ["*/configs/*", "*/main.py", "*/train.py"]

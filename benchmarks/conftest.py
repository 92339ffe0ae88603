import sys
from pathlib import Path

# The smoke tests import the shared harness (benchmarks/harness/) from this folder, as
# every main.py does.
sys.path.insert(0, str(Path(__file__).resolve().parent))

# Benchmark folders are scripts, not packages: only their *_test.py files are tests.
collect_ignore_glob = ["*/configs/*", "*/main.py", "*/train.py"]

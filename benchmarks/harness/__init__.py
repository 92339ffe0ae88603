"""The benchmarks' harness: one command line, one print-and-publish loop, one record format.

A benchmark folder keeps the layout of the flax examples and stays self-contained
and forkable:

- ``main.py``: a few lines naming the benchmark's options (:func:`benchmark`);
- ``train.py``: what is trained and measured, ending in ``run(config, ...)``, a
  generator that yields each run's result records as the run ends;
- ``configs/``: one ``get_config()`` per schedule (``default``: the CPU budget);
- ``train_test.py``: a smoke test on generated data in the dataset's shape
  (:mod:`harness.testing`), so it tests something where the real data is absent.

``main.py`` puts this folder's parent (``benchmarks/``) on ``sys.path`` and imports
``harness``; under pytest, ``benchmarks/conftest.py`` does it. Records are written by
:mod:`harness.results` (it was ``metajax.results``): one JSON file per measured number,
and the table of ``benchmarks/RESULTS.md``.
"""

from harness.cli import (
    DATA_DIR,
    SEED,
    STEPS,
    TASKS,
    TIME_LIMIT,
    WORKDIR,
    Option,
    benchmark,
    describe,
    option,
    override,
    positive_float,
    positive_int,
)
from harness.folder import import_own, load_config
from harness.results import publish, write_result

__all__ = [
    "DATA_DIR",
    "SEED",
    "STEPS",
    "TASKS",
    "TIME_LIMIT",
    "WORKDIR",
    "Option",
    "benchmark",
    "describe",
    "import_own",
    "load_config",
    "option",
    "override",
    "positive_float",
    "positive_int",
    "publish",
    "write_result",
]

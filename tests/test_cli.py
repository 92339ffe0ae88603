import json
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
from flax import serialization

from metajax.cli import main


def test_train_then_eval_on_digits(tmp_path, capsys, monkeypatch):
    original = Path.write_text

    def no_eval_json(self, *args, **kwargs):
        assert self.name != "eval.json", "eval.json written in place"
        return original(self, *args, **kwargs)

    # A reader never sees half an eval.json: it is renamed into place, not written in place.
    monkeypatch.setattr(Path, "write_text", no_eval_json)
    out = tmp_path / "run"
    rc = main(
        [
            "train",
            "--steps",
            "30",
            "--out-dir",
            str(out),
            "--eval-episodes",
            "20",
            "--no-progress",
            "--seed",
            "3",
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert "meta-test accuracy on test (5-way 1-shot, 20 episodes):" in printed and "±" in printed
    for name in ("config.json", "params.msgpack", "metrics.jsonl", "eval.json"):
        assert (out / name).is_file()
    config = json.loads((out / "config.json").read_text())
    assert config["model"] == "conv2" and config["dataset"] == "digits"
    summary = json.loads((out / "eval.json").read_text())
    assert 0.2 < summary["accuracy"] <= 1.0 and summary["episodes"] == 20

    rc = main(["eval", str(out), "--shots", "5", "--eval-episodes", "20", "--seed", "3"])
    assert rc == 0
    assert "5-way 5-shot, 20 episodes" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--ways", "6"], "ways=6 is larger than the 5 classes"),
        (["train", "--shots", "100", "--queries", "100"], "shots + queries"),
        (["train", "--test-ways", "9"], "ways=9 is larger than the 5 classes"),
        (["train", "--dataset", "cifar"], "dataset must be one of"),
        (["eval", "/nonexistent/run"], "run_dir must be a folder saved by `metajax train`"),
    ],
)
def test_bad_input_is_a_one_line_error(argv, message, capsys, tmp_path):
    assert main([*argv, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_missing_omniglot_names_the_option(capsys, tmp_path):
    rc = main(["train", "--dataset", "omniglot", "--data-dir", str(tmp_path), "--no-download"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "images_background.zip" in err and "--data-dir" in err


def test_help_explains_the_options():
    result = subprocess.run(
        [sys.executable, "-m", "metajax", "train", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    for option in (
        "--learner",
        "--dataset",
        "--ways",
        "--shots",
        "--queries",
        "--steps",
        "--seed",
        "--data-dir",
        "--out-dir",
        "--test-ways",
    ):
        assert option in result.stdout
    with pytest.raises(SystemExit):
        main(["train", "--ways", "0"])


@pytest.mark.parametrize(
    "learner", ["maml", "fomaml", "imaml", "reptile", "metasgd", "anil", "finetune"]
)
def test_every_learner_runs_through_the_same_cli(learner, tmp_path, capsys):
    """Each learner's train, test and eval path; on an MLP, which compiles several times
    faster than the default conv2 (the conv backbones have their own conformance tests)."""
    extra = ["--inner-steps", "2"] if learner not in ("finetune",) else []
    out = tmp_path / learner
    rc = main(
        [
            "train",
            "--learner",
            learner,
            "--steps",
            "3",
            "--tasks",
            "2",
            "--out-dir",
            str(out),
            "--eval-episodes",
            "4",
            "--no-progress",
            "--test-queries",
            "3",
            "--model",
            "mlp",
            *extra,
        ]
    )
    assert rc == 0, capsys.readouterr().err
    assert "meta-test accuracy on test (5-way 1-shot, 4 episodes)" in capsys.readouterr().out
    assert main(["eval", str(out), "--eval-episodes", "4"]) == 0


@pytest.mark.parametrize(
    "learner, dataset, ways",
    [
        ("matching", "digits", 5),
        ("relation", "digits", 5),
        ("siamese", "digits", 5),
        ("tapnet", "uea:JapaneseVowels", 3),
    ],
)
def test_metric_learners_run_through_the_same_cli(learner, dataset, ways, tmp_path, capsys):
    out = tmp_path / learner
    common = ["--eval-episodes", "4", "--test-ways", str(ways)]
    rc = main(
        [
            "train",
            "--learner",
            learner,
            "--dataset",
            dataset,
            "--ways",
            str(ways),
            "--queries",
            "2",
            "--steps",
            "2",
            "--out-dir",
            str(out),
            "--no-progress",
            "--model",
            "mlp",  # an MLP compiles faster than conv2; the CLI path is the same
            *common,
        ]
    )
    assert rc == 0, capsys.readouterr().err
    assert f"({ways}-way 1-shot, 4 episodes)" in capsys.readouterr().out
    assert main(["eval", str(out), "--eval-episodes", "4"]) == 0


@pytest.mark.parametrize("learner", ["mann", "lstm", "snail", "metanet", "idemenet"])
def test_model_based_learners_run_through_the_same_cli(learner, tmp_path, capsys):
    """Trained at 2 queries, tested at 3: the sequence learners are rebuilt for the test length.

    SNAIL, MetaNet and IDeMe-Net embed with an MLP, which compiles faster than conv2.
    ``eval`` rebuilds at yet another length for the LSTM only; the others are evaluated
    as trained and tested, which reuses the compiled test program (it is the same).
    """
    out = tmp_path / learner
    rc = main(
        [
            "train",
            "--learner",
            learner,
            "--model",
            "mlp",
            "--queries",
            "2",
            "--test-queries",
            "3",
            "--steps",
            "2",
            "--out-dir",
            str(out),
            "--eval-episodes",
            "4",
            "--no-progress",
        ]
    )
    assert rc == 0, capsys.readouterr().err
    assert "(5-way 1-shot, 4 episodes)" in capsys.readouterr().out
    queries = ["--queries", "4"] if learner == "lstm" else []
    assert main(["eval", str(out), "--eval-episodes", "4", *queries]) == 0
    assert "(5-way 1-shot, 4 episodes)" in capsys.readouterr().out


def test_model_based_learners_refuse_other_ways_or_shots(capsys):
    assert main(["train", "--learner", "mann", "--test-ways", "3", "--no-progress"]) == 2
    assert "test_ways must equal ways=5 for mann" in capsys.readouterr().err
    assert main(["train", "--learner", "snail", "--test-shots", "2", "--no-progress"]) == 2
    assert "test_shots must equal shots=1 for snail" in capsys.readouterr().err
    assert main(["train", "--learner", "idemenet", "--dataset", "sinusoid", "--no-progress"]) == 2


def test_tapnet_needs_time_series(capsys):
    assert main(["train", "--learner", "tapnet", "--steps", "1", "--no-progress"]) == 2
    assert "learner tapnet needs a multivariate time-series dataset" in capsys.readouterr().err


def test_head_learners_refuse_other_test_ways(capsys):
    assert main(["train", "--learner", "maml", "--test-ways", "3", "--no-progress"]) == 2
    assert "test_ways must equal ways=5 for maml" in capsys.readouterr().err
    assert main(["train", "--learner", "protonet", "--proximal", "1.0", "--no-progress"]) == 2
    assert "--proximal does not apply to protonet" in capsys.readouterr().err


def _exit_code(argv) -> int:
    """``main``'s return code, or argparse's exit code for a refused option."""
    try:
        return main(argv)
    except SystemExit as exit:
        return exit.code


@pytest.mark.parametrize(
    "argv, flag",
    [
        (["--lr", "-1"], "--lr"),  # would train by gradient ascent
        (["--lr", "0"], "--lr"),  # would silently become the default
        (["--lr", "inf"], "--lr"),
        (["--learner", "maml", "--inner-lr", "-0.1"], "--inner-lr"),
        (["--eval-episodes", "1"], "--eval-episodes"),  # a 95% CI needs two
        (["--dataset", "sinusoid", "--learner", "maml", "--ways", "3"], "--ways"),
        (["--dataset", "sinusoid", "--learner", "maml", "--test-ways", "3"], "--test-ways"),
    ],
)
def test_bad_numbers_are_refused_before_training_naming_the_flag(argv, flag, tmp_path, capsys):
    out = tmp_path / "run"
    assert _exit_code(["train", *argv, "--steps", "1", "--out-dir", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert flag in err and "Traceback" not in err
    assert not out.exists(), "nothing is trained or saved"


def test_maml_on_sinusoids_adapts_at_finns_rate_and_config_records_it(tmp_path, capsys):
    """Finn et al. adapt at 0.01 on sinusoids (Omniglot's 0.4 diverges there)."""
    out = tmp_path / "sin"
    argv = ["train", "--learner", "maml", "--dataset", "sinusoid", "--shots", "5", "--queries",
            "5", "--steps", "5", "--tasks", "4", "--out-dir", str(out), "--eval-episodes", "8",
            "--no-progress"]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "meta-test mse on test (K=5, 8 episodes)" in printed
    assert "nan" not in printed and "inf" not in printed
    config = json.loads((out / "config.json").read_text())
    assert config["inner_lr"] == 0.01 and config["lr"] == 1e-3
    assert config["inner_steps"] == 1 and config["test_inner_steps"] == 3
    assert set(config["versions"]) == {"jax", "jaxlib", "flax", "optax", "metajax"}
    assert all(isinstance(v, str) for v in config["versions"].values())


def _fake_omniglot(monkeypatch, calls: list):
    """``datasets.load`` for any name: random 8x8 images with train, val and test classes."""
    from metajax import datasets

    rng = np.random.default_rng(0)
    counts = {"train": 8, "val": 6, "test": 6}
    pools = {s: rng.random((n, 12, 8, 8, 1), np.float32) for s, n in counts.items()}
    names = {s: tuple(f"{s}{i}" for i in range(n)) for s, n in counts.items()}

    def load(name, *, data_dir=None, download=True, **_):
        calls.append(data_dir)
        return datasets.FewShotDataset(name, pools, names)

    monkeypatch.setattr(datasets, "load", load)


def _meta_test_line(printed: str) -> str:
    return next(line for line in printed.splitlines() if line.startswith("meta-test"))


def test_eval_scores_the_checkpoint_that_train_scored(tmp_path, capsys, monkeypatch):
    """With --validate-every, train tests params_best.msgpack; eval must score the same.

    And eval loads the data from the run's --data-dir, unless given another.
    """
    calls = []
    _fake_omniglot(monkeypatch, calls)
    out, data = tmp_path / "run", tmp_path / "data"
    argv = ["train", "--dataset", "omniglot", "--data-dir", str(data), "--model", "mlp",
            "--steps", "20", "--log-every", "10", "--validate-every", "10", "--checkpoint-every",
            "10", "--val-episodes", "4", "--eval-episodes", "10", "--no-progress",
            "--out-dir", str(out)]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    trained = _meta_test_line(capsys.readouterr().out)
    assert (out / "params_best.msgpack").is_file()
    assert json.loads((out / "config.json").read_text())["data_dir"] == str(data.resolve())
    # The last step's parameters may be anything: make sure they differ from the best.
    last = serialization.msgpack_restore((out / "params.msgpack").read_bytes())
    zeros = jax.tree.map(np.zeros_like, last)
    (out / "params.msgpack").write_bytes(serialization.msgpack_serialize(zeros))
    assert main(["eval", str(out), "--eval-episodes", "10"]) == 0, capsys.readouterr().err
    assert _meta_test_line(capsys.readouterr().out) == trained
    assert [str(c) for c in calls] == [str(data.resolve())] * 2
    elsewhere = tmp_path / "moved"
    last = ["eval", str(out), "--eval-episodes", "10", "--last", "--data-dir", str(elsewhere)]
    assert main(last) == 0
    assert _meta_test_line(capsys.readouterr().out) != trained
    assert str(calls[-1]) == str(elsewhere)


@pytest.mark.parametrize("command", ["train", "eval"])
def test_help_prints_one_percent_sign(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    printed = capsys.readouterr().out
    assert "95% CI" in printed and "%%" not in printed

import json
import subprocess
import sys

import pytest

from metajax.cli import main


def test_train_then_eval_on_digits(tmp_path, capsys):
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
            *common,
        ]
    )
    assert rc == 0, capsys.readouterr().err
    assert f"({ways}-way 1-shot, 4 episodes)" in capsys.readouterr().out
    assert main(["eval", str(out), "--eval-episodes", "4"]) == 0


@pytest.mark.parametrize("learner", ["mann", "lstm", "snail", "metanet", "idemenet"])
def test_model_based_learners_run_through_the_same_cli(learner, tmp_path, capsys):
    """Trained at 2 queries, tested at 3: the sequence learners are rebuilt for the test length."""
    out = tmp_path / learner
    rc = main(
        [
            "train",
            "--learner",
            learner,
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
    assert main(["eval", str(out), "--eval-episodes", "4", "--queries", "4"]) == 0


def test_model_based_learners_refuse_other_ways_or_shots(capsys):
    assert main(["train", "--learner", "mann", "--test-ways", "3", "--no-progress"]) == 2
    assert "test_ways must equal ways=5 for mann" in capsys.readouterr().err
    assert main(["train", "--learner", "snail", "--test-shots", "2", "--no-progress"]) == 2
    assert "test_shots must equal shots=1 for snail" in capsys.readouterr().err
    assert main(["train", "--learner", "idemenet", "--dataset", "sinusoid", "--no-progress"]) == 2


def test_tapnet_needs_time_series(capsys):
    assert main(["train", "--learner", "tapnet", "--steps", "1", "--no-progress"]) == 2
    assert "learner tapnet needs a multivariate time-series dataset" in capsys.readouterr().err


def test_sinusoid_regression_reports_mse(tmp_path, capsys):
    rc = main(
        [
            "train",
            "--learner",
            "maml",
            "--dataset",
            "sinusoid",
            "--shots",
            "5",
            "--queries",
            "5",
            "--inner-lr",
            "0.01",
            "--steps",
            "5",
            "--tasks",
            "4",
            "--out-dir",
            str(tmp_path / "sin"),
            "--eval-episodes",
            "8",
            "--no-progress",
        ]
    )
    assert rc == 0, capsys.readouterr().err
    assert "meta-test mse on test (K=5, 8 episodes)" in capsys.readouterr().out


def test_head_learners_refuse_other_test_ways(capsys):
    assert main(["train", "--learner", "maml", "--test-ways", "3", "--no-progress"]) == 2
    assert "test_ways must equal ways=5 for maml" in capsys.readouterr().err
    assert main(["train", "--learner", "protonet", "--proximal", "1.0", "--no-progress"]) == 2
    assert "--proximal does not apply to protonet" in capsys.readouterr().err

"""The harness: one command line, the overrides, the print-and-publish loop, module
isolation and the generated data the smoke tests run on."""

import json
import sys
import textwrap

import numpy as np
import pytest
from harness import cli, folder, testing

import metajax as mj
from metajax.datasets.omniglot_alphabets import omniglot_alphabets


@pytest.fixture
def own_modules():
    """Puts back the benchmark modules and sys.path that a test's folders replace."""
    saved = {m: sys.modules[m] for m in sys.modules if m.split(".")[0] in folder.OWN}
    path = list(sys.path)
    yield
    for name in [m for m in sys.modules if m.split(".")[0] in folder.OWN]:
        del sys.modules[name]
    sys.modules.update(saved)
    sys.path[:] = path


def write_benchmark(root, name="toy", steps=3):
    """A benchmark folder: two configs and a train.run that yields two runs' records."""
    bench = root / name
    (bench / "configs").mkdir(parents=True)
    (bench / "configs" / "default.py").write_text(
        f"def get_config():\n    return dict(steps={steps}, settings={{'a': dict(steps=5)}})\n"
    )
    (bench / "configs" / "paper.py").write_text(
        "from configs import default\n\n\ndef get_config():\n"
        "    return {**default.get_config(), 'steps': 1000}\n"
    )
    (bench / "train.py").write_text(
        textwrap.dedent(
            f"""
            NAME = {name!r}

            def run(config, *, methods=None, workdir=None):
                for method in methods or ("A", "B"):
                    yield [dict(benchmark=NAME, method=method, dataset="d", setting="s",
                                metric="accuracy", value=0.5, ci95=0.01, paper=None,
                                transductive=False,
                                steps=config["steps"], inner=config["settings"]["a"]["steps"],
                                workdir=workdir)]
            """
        )
    )
    (bench / "main.py").write_text("")
    return bench / "main.py"


def toy_main(tmp_path):
    return cli.benchmark(
        write_benchmark(tmp_path),
        "A toy benchmark.",
        cli.option("--methods", nargs="+"),
        cli.STEPS,
        cli.WORKDIR,
    )


def test_main_overrides_runs_and_publishes_each_run(tmp_path, capsys, own_modules):
    results = tmp_path / "results"
    argv = ["--steps", "7", "--methods", "B", "A", "--workdir", "w", "--results-dir", str(results)]
    records = toy_main(tmp_path)(argv)
    assert [r["method"] for r in records] == ["B", "A"]
    for r in records:
        assert (r["steps"], r["inner"], r["workdir"], r["config"]) == (7, 7, "w", "default")
    files = sorted(p.name for p in results.glob("*.json"))
    assert files == ["toy__A__d__s.json", "toy__B__d__s.json"]
    saved = json.loads((results / files[0]).read_text())
    assert saved["config"] == "default" and "versions" in saved and "command" in saved
    out = capsys.readouterr().out
    assert "B d s: accuracy 50.00 ± 1.00, 7 steps" in out and "| toy | A | d | s |" in out


def test_main_reads_the_chosen_config_and_dry_run_writes_nothing(tmp_path, own_modules):
    results = tmp_path / "results"
    records = toy_main(tmp_path)(["--config", "paper", "--dry-run", "--results-dir", str(results)])
    assert [(r["steps"], r["inner"], r["config"]) for r in records] == [(1000, 5, "paper")] * 2
    assert not results.exists()


def test_set_replaces_any_config_key_after_the_named_options(tmp_path, own_modules):
    results = tmp_path / "results"
    argv = ["--steps", "7", "--set", "steps=9", "--set", "mode=fast", "--results-dir", str(results)]
    records = toy_main(tmp_path)(argv)
    assert [(r["steps"], r["inner"]) for r in records] == [(9, 9)] * 2
    assert records[0]["config_overrides"] == {"steps": 9, "mode": "fast"}
    assert cli.parse_setting("test_ways=(5, 20)") == ("test_ways", (5, 20))


def test_fake_data_patches_the_loaders_for_the_run_only(tmp_path, own_modules):
    main = toy_main(tmp_path)
    train = folder.import_own(tmp_path / "toy", "train")[0]
    seen = []
    real = train.run

    def run(config, **kwargs):
        seen.append(mj.datasets.load("omniglot").pool("val").shape)
        yield from real(config, **kwargs)

    train.run = run
    records = main(["--fake-data", "--results-dir", str(tmp_path / "results")])
    assert seen == [(10, 20, 28, 28, 1)] and all(r["fake_data"] for r in records)
    assert mj.datasets.load is not testing._fake_load  # put back


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--set", "steps"], "--set: must be KEY=VALUE with KEY a config key, got 'steps'"),
        (["--fake-data"], "--fake-data measures nothing: give --results-dir another folder"),
        (["--steps", "0"], "--steps: must be > 0, got 0"),
        (["--steps", "x"], "--steps: must be a number, got 'x'"),
        (["--config", "gpu"], "argument --config: invalid choice: 'gpu'"),
    ],
)
def test_main_refuses_bad_options_in_one_line(tmp_path, capsys, argv, message, own_modules):
    with pytest.raises(SystemExit) as exit_:
        toy_main(tmp_path)(argv)
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_override_replaces_a_key_everywhere_and_adds_a_missing_one():
    config = dict(steps={5: 300, 20: 150}, maml={5: dict(inner_steps=1)}, ways=(5, 20))
    cli.apply_override(config, "steps", 2)
    cli.apply_override(config, "ways", (5,))
    cli.apply_override(config, "torch_device", "cpu")
    assert config == dict(
        steps={5: 2, 20: 2}, maml={5: dict(inner_steps=1)}, ways=(5,), torch_device="cpu"
    )


def test_import_own_keeps_each_folders_modules_apart(tmp_path, own_modules):
    one, two = write_benchmark(tmp_path, "one"), write_benchmark(tmp_path, "two")
    (train_one,) = folder.import_own(one, "train")
    assert folder.import_own(one.parent, "train")[0] is train_one  # kept: tests may patch it
    train_two, paper = folder.import_own(two, "train", "configs.paper")
    assert (train_one.NAME, train_two.NAME) == ("one", "two")
    assert paper.__file__.startswith(str(two.parent))
    assert folder.load_config(one.parent, "paper")["steps"] == 1000
    with pytest.raises(ValueError, match="no config 'gpu' in"):
        folder.load_config(one.parent, "gpu")


def test_fake_omniglot_has_the_real_shapes_and_names():
    vinyals = testing.fake_omniglot()
    assert vinyals.splits == ("train", "val", "test")
    assert vinyals.pool("train").shape == (30, 20, 28, 28, 1)
    assert vinyals.class_names["test"][1] == "Test/character01/rot090"
    lake = testing.fake_omniglot("lake", image_size=20)
    assert lake.pool("test").shape == (40, 20, 20, 20, 1)
    alphabets, names = omniglot_alphabets(lake.class_names["test"])
    assert len(names) == 2 and np.bincount(alphabets).tolist() == [20, 20]


@pytest.mark.parametrize("name", sorted(testing.UEA_SHAPES))
def test_fake_uea_has_the_real_shapes(name):
    n_train, n_test, length, channels, classes = testing.UEA_SHAPES[name]
    ds = testing.fake_uea(name)
    assert ds.train.x.shape == (n_train, length, channels + 1) and ds.test.y.shape == (n_test,)
    assert ds.classes == classes and set(ds.train.y.tolist()) == set(range(classes))
    assert np.all(ds.train.x[..., -1] == 1.0)  # the mask: every step is real
    fs = mj.datasets.uea_few_shot(ds)
    assert fs.pool("train").shape[2:] == (length, channels + 1)


def test_use_fake_data_replaces_the_loaders_for_one_test(monkeypatch):
    module = type(sys)("train")
    module.load_uea = mj.datasets.load_uea
    testing.use_fake_data(monkeypatch, module)
    assert mj.datasets.load("omniglot").pool("val").shape == (10, 20, 28, 28, 1)
    assert mj.datasets.load_omniglot(protocol="lake").splits == ("train", "test")
    assert module.load_uea("JapaneseVowels").length == 29
    assert mj.datasets.load("uea:BasicMotions").pool("train").shape[2:] == (100, 7)

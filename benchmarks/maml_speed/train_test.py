"""Smoke test of the benchmark: a couple of tiny meta-steps on each side, and the records."""

import json
import sys

import jax
import numpy as np
import pytest
from harness.testing import import_own

main, train, default = import_own(__file__, "main", "train", "configs.default")


def tiny_config(**overrides):
    config = default.get_config()
    config.update(
        filters=4,
        blocks=1,
        tasks=2,
        queries=2,
        pool=(8, 4),
        steps=1,
        warmup=1,
        repetitions=1,
        **overrides,
    )
    return config


def test_im2col_conv4_matches_metajax_conv4():
    config = tiny_config()
    x = jax.random.normal(jax.random.key(0), (6, 28, 28, 1))
    model, im2col = train.make_model(config), train.make_model({**config, "conv": "im2col"})
    params = jax.jit(model.init)(jax.random.key(1), x)
    expected = jax.jit(model.apply)(params, x)
    actual = jax.jit(im2col.apply)(params, x)
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4)


def test_measure_metajax_times_a_jitted_meta_step():
    # MAML only: each compile of a second-order step costs CI ~10 s (iMAML's is as dear).
    result = train.measure_metajax(tiny_config(), 1, "maml")
    assert result["seconds_per_step"] > 0 and result["compile_s"] > 0
    assert result["peak_rss_gb"] > 0 and len(result["step_times"]) == 1
    assert result["method"] == "maml" and np.isfinite(result["final_loss"])


def test_measure_l2l_runs_learn2learn_in_its_venv():
    try:
        train.l2l_command(tiny_config(), 1)
    except FileNotFoundError:
        pytest.skip("no learn2learn venv: bash benchmarks/maml_speed/setup_env.sh")
    result = train.measure_l2l(tiny_config(torch_threads=1), 1)
    assert result["framework"] == "learn2learn" and result["seconds_per_step"] > 0
    assert result["versions"]["learn2learn"] == "0.2.0"
    assert result["versions"]["torch"].startswith("2.13.0")


def test_main_writes_one_record_per_method_and_setting(tmp_path, monkeypatch):
    def fake(seconds):
        return lambda *args, **kwargs: dict(
            seconds_per_step=seconds, first_step_s=2 * seconds, compile_s=1.0, peak_rss_gb=0.5
        )

    monkeypatch.setattr(train, "measure_metajax_isolated", fake(3.0))
    monkeypatch.setattr(train, "measure_l2l", fake(2.0))
    monkeypatch.setattr(train, "l2l_command", lambda *args, **kwargs: [])
    monkeypatch.setitem(sys.modules, "train", train)  # main runs this train, patched
    records = main.main(["--inner-steps", "1", "--results-dir", str(tmp_path)])
    by_method = {r["method"]: r for r in records}
    assert set(by_method) == {"MAML (metajax)", "iMAML (metajax)", "MAML (learn2learn)"}
    assert by_method["MAML (metajax)"]["ratio_to_baseline"] == pytest.approx(1.5)
    assert by_method["iMAML (metajax)"]["ratio_to_baseline"] == pytest.approx(1.0)
    files = sorted(p.name for p in tmp_path.glob("*.json"))
    assert len(files) == 3 and all(f.startswith("maml-speed__") for f in files)
    record = json.loads((tmp_path / files[0]).read_text())
    assert record["metric"] == "seconds_per_step" and record["setting"] == "5w1s, 1 step"
    assert record["paper"] is None and record["repetitions"] == 3

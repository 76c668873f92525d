"""``featlab robustness``: scores on constructed correctness, then the table end to end."""
import csv
import os

import numpy as np
import pytest
from click.testing import CliRunner

from featlab.analyses.robustness.run import robustness
from featlab.analyses.robustness.scores import mean_corruption_error, robustness_scores
from featlab.cli.main import cli
from featlab.errors import FeatlabError
from featlab.extraction import ExtractionSpec, extract
from featlab.store import FeatureStore
from featlab.store.heads import load_head

from conftest import one_error_line


def _hits(n, k, seed):
    """A bool (n,) with exactly k True at seeded places."""
    out = np.zeros(n, bool)
    out[np.random.default_rng(seed).permutation(n)[:k]] = True
    return out


def _correct():
    n = 400
    ones = np.ones(n, bool)
    ref = {"clean": ones, "s1": _hits(n, 200, 1), "s2": _hits(n, 100, 2), "atk": _hits(n, 300, 3)}
    better = {"clean": _hits(n, 380, 4), "s1": _hits(n, 342, 5), "s2": _hits(n, 304, 6),
              "atk": _hits(n, 300, 7)}
    return {"ref": ref, "better": better, "twin": dict(ref)}


def test_scores_on_constructed_correctness():
    columns = {"corrupt:name=fog": ["s1", "s2"], "atk": ["atk"]}
    out = robustness_scores(_correct(), "clean", columns, "ref", n_boot=500, seed=0)
    assert out["ref"]["clean"] == 1.0 and out["better"]["clean"] == 0.95
    assert out["ref"]["scores"]["corrupt:name=fog"]["R"] == pytest.approx((0.5 + 0.25) / 2)
    fog = out["better"]["scores"]["corrupt:name=fog"]
    assert fog["R"] == pytest.approx((342 / 380 + 304 / 380) / 2)
    assert fog["sign"] == "+" and fog["low"] > 0 and fog["low"] < fog["diff"] < fog["high"]
    atk = out["better"]["scores"]["atk"]
    assert atk["R"] == pytest.approx(300 / 380)
    assert atk["sign"] == "" and atk["low"] < 0 < atk["high"]  # 0.789 vs 0.75: within noise
    assert all(s["sign"] == "" and s["diff"] == 0 for s in out["twin"]["scores"].values())
    flipped = robustness_scores(_correct(), "clean", columns, "better", n_boot=500, seed=0)
    assert flipped["ref"]["scores"]["corrupt:name=fog"]["sign"] == "-"


def test_mce_is_the_ratio_of_summed_errors():
    mce = mean_corruption_error(_correct(), {"fog": ["s1", "s2"]}, "ref")
    expected = ((1 - 342 / 400) + (1 - 304 / 400)) / ((1 - 0.5) + (1 - 0.25))
    assert mce["better"]["CE"]["fog"] == pytest.approx(expected)
    assert mce["better"]["mCE"] == pytest.approx(expected) and mce["ref"]["mCE"] == 1.0


CONDITIONS = "clean,corrupt:name=fog:severity=1:2,occlude:severity=5"


@pytest.fixture(scope="module")
def store_path(tmp_path_factory, tiny_weights):
    from featlab.analyses.heads.run import fit_head
    from featlab.data.synthetic import generate_synthetic

    tmp = tmp_path_factory.mktemp("robustness")
    generate_synthetic(str(tmp / "data"), seed=2, n_images=32, image_size=32)
    extract(ExtractionSpec(store=str(tmp / "store"), root=str(tmp / "data"), dataset="synthetic",
                           conditions=CONDITIONS, device="cpu", batch_size=32, chunk_size=32,
                           image_size=32, weights=tiny_weights))
    fit_head(FeatureStore(str(tmp / "store")), alphas=[0.0, 10.0])
    return str(tmp / "store")


def test_table_end_to_end(store_path, tmp_path):
    store = FeatureStore(store_path)
    result = robustness(store, n_boot=200, out_dir=str(tmp_path))
    assert result["reference"] == "fg-all"
    assert list(result["columns"]) == ["corrupt:name=fog", "occlude"]
    names = {r["classifier"] for r in result["rows"]}
    assert names == {"fg-all", "bg-all", "joint-all-alpha=0", "joint-all-alpha=10"}
    # recompute fg-all's R on occlude from its coefficients
    arrays, attrs = load_head(store.path, "fg-all")
    labels = store.labels(split="test")

    def accuracy(key):
        x = store.read(backbone=attrs["inputs"][0], layer="penultimate", condition=key,
                       split="test")
        return np.mean((x @ arrays["coef"].T.astype(np.float64) + arrays["intercept"])
                       .argmax(1) == labels)

    fg = next(r for r in result["rows"] if r["classifier"] == "fg-all")
    assert fg["clean"] == pytest.approx(accuracy("clean"))
    assert fg["scores"]["occlude"]["R"] == pytest.approx(accuracy("occlude:severity=5")
                                                         / accuracy("clean"))
    with open(result["csv"]) as handle:
        table = list(csv.reader(handle))
    assert table[0] == ["classifier", "clean", "corrupt:name=fog", "occlude", "mCE"]
    assert len(table) == 5 and all(os.path.isfile(p) for p in result["figures"])
    assert [os.path.splitext(p)[1] for p in result["figures"]] == [".png", ".pdf"]


def test_cli_and_one_line_errors(store_path, tmp_path):
    runner = CliRunner()
    ok = runner.invoke(cli, ["robustness", "--store", store_path, "--n-boot", "100",
                             "--reference", "joint-all-alpha=0", "--out", str(tmp_path)])
    assert ok.exit_code == 0, ok.output
    assert "reference joint-all-alpha=0" in ok.output and "robustness-all.csv" in ok.output
    bad = runner.invoke(cli, ["robustness", "--store", store_path, "--reference", "nosuch",
                              "--out", str(tmp_path)])
    assert bad.exit_code == 2 and "known: bg-all" in bad.output
    assert len(bad.output.strip().splitlines()) == 1
    with pytest.raises(FeatlabError, match="no classifier for subset 'similar'"):
        robustness(FeatureStore(store_path), subset="similar")


def test_store_without_clean_is_refused_with_a_command_that_extracts_it(tmp_path, tiny_weights):
    """The store was made with a limit, a seed and its own weights: the suggested command
    repeats them, so it adds the clean condition to that very store."""
    import shlex

    from featlab.data.synthetic import generate_synthetic

    generate_synthetic(str(tmp_path / "data"), seed=2, n_images=24, image_size=32)
    extract(ExtractionSpec(store=str(tmp_path / "s"), root=str(tmp_path / "data"),
                           conditions="color:severity=1", device="cpu", batch_size=16,
                           chunk_size=16, image_size=32, weights=tiny_weights, limit=12,
                           seed=3))
    with pytest.raises(FeatlabError, match="no clean condition") as err:
        robustness(FeatureStore(str(tmp_path / "s")))
    command = str(err.value).split("extract it: ")[1]
    assert "--limit 12" in command and "--seed 3" in command
    words = shlex.split(command)
    assert words[:2] == ["featlab", "extract"]
    run = CliRunner().invoke(cli, words[1:] + ["--device", "cpu"])
    assert run.exit_code == 0, run.output
    assert "clean" in FeatureStore(str(tmp_path / "s")).conditions


@pytest.mark.parametrize("n_boot", ["0", "1", "99"])
def test_fewer_than_100_resamples_are_refused(store_path, tmp_path, n_boot):
    out = tmp_path / "out"
    res = CliRunner().invoke(cli, ["robustness", "--store", store_path, "--n-boot", n_boot,
                                   "--out", str(out)])
    assert res.exit_code == 2, res.output
    assert "at least 100 resamples" in one_error_line(res.output) and not out.exists()
    with pytest.raises(FeatlabError, match="--n-boot"):
        robustness(FeatureStore(store_path), n_boot=int(n_boot))


@pytest.fixture(scope="module")
def stale_store(tmp_path_factory, tiny_weights):
    """Clean features and an FGSM attack on fg-all, then fg-all refit with another l2: the
    attack column is stale. No ImageNet-C corruption is stored."""
    from featlab.analyses.heads.run import fit_head
    from featlab.data.synthetic import generate_synthetic

    tmp = tmp_path_factory.mktemp("stale")
    generate_synthetic(str(tmp / "data"), seed=2, n_images=32, image_size=32)

    def run(conditions):
        extract(ExtractionSpec(store=str(tmp / "store"), root=str(tmp / "data"),
                               conditions=conditions, device="cpu", batch_size=32,
                               chunk_size=32, image_size=32, weights=tiny_weights))

    run("clean")
    fit_head(FeatureStore(str(tmp / "store")), alphas=[0.0])
    run("fgsm:eps=0.05:target=fg")
    fit_head(FeatureStore(str(tmp / "store")), alphas=[0.0], l2=0.5)
    return str(tmp / "store")


def test_mce_without_corruptions_and_stale_columns_are_said(stale_store, store_path, tmp_path):
    res = CliRunner().invoke(cli, ["robustness", "--store", stale_store, "--n-boot", "100",
                                   "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "nan" not in res.output.lower()
    assert "mCE needs the 15 ImageNet-C corruptions" in res.output and "none is stored" in \
        res.output
    assert "stale (made against a head refit since" in res.output
    result = robustness(FeatureStore(stale_store), n_boot=100, out_dir=str(tmp_path))
    assert all(r["mCE"] is None for r in result["rows"])
    with open(result["csv"]) as handle:
        header = next(csv.reader(handle))
    key = FeatureStore(stale_store).resolve_condition("fgsm:eps=0.05:target=fg")
    assert header == ["classifier", "clean", f"{key} (stale)"]
    fog = robustness(FeatureStore(store_path), n_boot=100)
    assert fog["mce_note"] == "mCE over 1 of the 15 ImageNet-C corruptions"
    assert all(r["mCE"] is not None for r in fog["rows"])


def test_one_store_per_run(stale_store, store_path, tmp_path):
    res = CliRunner().invoke(cli, ["robustness", "--store", store_path, "--store", stale_store,
                                   "--n-boot", "100", "--out", str(tmp_path / "out")])
    assert res.exit_code == 2, res.output
    line = one_error_line(res.output)
    assert "--store given 2 times" in line and "once" in line
    assert not (tmp_path / "out").exists()

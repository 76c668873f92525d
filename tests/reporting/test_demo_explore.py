"""The demo exploration's decision on constructed correctness vectors: a head that is right
on more of the same images is 'yes', an identical head 'no', a few images 'inconclusive';
the adaptive rows are accuracies with the Wilson interval (statsmodels' reference); the
demo command passes ``--explore/--no-explore``."""
import numpy as np
import pytest
from click.testing import CliRunner
from statsmodels.stats.proportion import proportion_confint

from featlab.cli.main import cli
from featlab.errors import FeatlabError
from featlab.reporting.claims import GAIN_MARGIN
from featlab.reporting.demo_explore import adaptive, compare

KW = dict(n_boot=500, seed=0)


def _hits(n, k, seed):
    out = np.zeros(n, bool)
    out[np.random.default_rng(seed).permutation(n)[:k]] = True
    return out


def test_a_better_head_on_the_same_images_is_yes():
    linear = _hits(400, 200, 1)
    better = linear | _hits(400, 120, 2)  # right wherever linear is, and on more images
    r = compare("mlp", "blur", "joint", better, linear, **KW)
    assert r["verdict"] == "yes" and r["low"] > 0 and r["margin"] == GAIN_MARGIN
    assert r["effect"] == pytest.approx(better.mean() - linear.mean()) and r["n"] == 400
    assert 0 <= r["p_value"] < 0.001


def test_an_identical_or_worse_head_is_no():
    linear = _hits(400, 200, 1)
    same = compare("mlp", "blur", "joint", linear.copy(), linear, **KW)
    assert same["verdict"] == "no" and same["low"] == same["high"] == 0.0
    worse = compare("gated", "blur", "joint", linear & _hits(400, 300, 3), linear, **KW)
    assert worse["verdict"] == "no" and worse["high"] < 0


def test_few_images_are_inconclusive():
    linear = np.array([True, False, True, False, True, False])
    r = compare("mlp", "blur", "joint", linear | np.array([0, 1, 0, 0, 0, 0], bool), linear, **KW)
    assert r["verdict"] == "inconclusive" and r["low"] <= 0 < GAIN_MARGIN <= r["high"]
    empty = compare("mlp", "blur", "joint", np.zeros(0, bool), np.zeros(0, bool), **KW)
    assert empty["verdict"] == "inconclusive" and empty["n"] == 0 and empty["effect"] is None


def test_adaptive_rows_are_accuracies_with_the_wilson_interval():
    correct = _hits(50, 17, 4)
    r = adaptive("gated", "fgsm:eps=0.01:target=head:gated", correct)
    low, high = proportion_confint(17, 50, alpha=0.05, method="wilson")
    assert r["effect"] == pytest.approx(17 / 50) and r["verdict"] == "reported"
    assert (r["low"], r["high"]) == pytest.approx((low, high)) and r["versus"] is None


@pytest.mark.parametrize("flag, explore", [([], True), (["--no-explore"], False)])
def test_the_demo_command_passes_explore(monkeypatch, flag, explore):
    from featlab.reporting import demo as demo_module

    seen = []

    def stop(spec):
        seen.append(spec)
        raise FeatlabError("stopped before any work")

    monkeypatch.setattr(demo_module, "demo", stop)
    result = CliRunner().invoke(cli, ["demo", *flag])
    assert result.exit_code == 2 and [s.explore for s in seen] == [explore]


def test_the_in_memory_adaptive_attack_is_the_stored_one_on_the_test_images(tmp_path,
                                                                              tiny_weights):
    from featlab.analyses.heads.run import fit_head
    from featlab.data.synthetic import generate_synthetic
    from featlab.extraction import ExtractionSpec, extract
    from featlab.reporting.demo_explore import adaptive_correct
    from featlab.store import FeatureStore

    root, path = str(tmp_path / "data"), str(tmp_path / "store")
    generate_synthetic(root, seed=3, n_images=48, image_size=32, n_supercategories=2,
                       classes_per_supercategory=2)

    def run(conditions):
        extract(ExtractionSpec(store=path, root=root, conditions=conditions, device="cpu",
                               batch_size=16, chunk_size=16, image_size=32, weights=tiny_weights))

    run("clean")
    name = fit_head(FeatureStore(path), head="mlp", alphas=(0.0,), conditions=["clean"],
                    width=8)["heads"][0]
    attacks = [f"fgsm:eps=0.03:target=head:{name}", "fgsm:eps=0.1:target=fg"]
    fit_head(FeatureStore(path), alphas=(0.0,))
    run(",".join(attacks))
    store = FeatureStore(path)
    labels = store.samples.label[store.samples.split == "test"]
    got = adaptive_correct(store, root, attacks, device="cpu", image_size=32,
                           weights=tiny_weights, batch_size=5)
    for attack, correct in zip(attacks, got):
        stored = store.read_array("attack/prediction", store.resolve_condition(attack),
                                  split="test")
        assert correct.dtype == bool and len(correct) == len(labels) > 0
        np.testing.assert_array_equal(correct, stored == labels)

"""``featlab replicate`` end to end: two tiny seeds of the demo's study side by side (each its
own process: data, pretraining, extraction, heads, claims), their pool, a rerun that is a
no-op, the seeds of a store (re-split, heads refitted, the store untouched) and the report's
Replication section."""
import json
import os

import h5py
import numpy as np
import pytest

from featlab.replication.meta import decide, rule
from featlab.replication.run import replicate
from featlab.replication.runner import cores
from featlab.replication.store_study import store_seed
from featlab.reporting.report import report
from featlab.store import FeatureStore

#: the quick size made smaller still: one sigma, one eps, two consistencies, few images
TINY = dict(demo=dict(n_images=96, dose_images=64, sigmas=(2.0,), eps=(0.02,),
                      alphas=(0.0, 10.0), consistencies=(1.0, 0.0), n_boot=200),
            pretrain=dict(object=dict(n_train=256, n_val=64), scene=dict(n_train=256, n_val=64)))


@pytest.fixture(scope="module")
def two_seeds(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("replicate") / "out")
    return out, replicate("0-1", jobs=2, quick=True, device="cpu", out_dir=out, options=TINY)


def _summary(out, seed):
    with open(os.path.join(out, f"seed-{seed}", "summary.json")) as handle:
        return json.load(handle)


@pytest.mark.slow
def test_two_seeds_side_by_side_are_pooled(two_seeds):
    out, result = two_seeds
    assert result["seeds"] == [0, 1] and result["failed"] == [] and set(result["run_seconds"]) == {0, 1}
    seeds = [_summary(out, s) for s in (0, 1)]
    assert [s["config"]["threads"] for s in seeds] == [max(1, cores() // 2)] * 2
    keys = [[(r["id"], r["claim"]) for r in s["claims"]] for s in seeds]
    assert keys[0] == keys[1] and len(result["rows"]) == len(keys[0])
    assert {r["id"] for r in result["rows"]} == {"1", "2", "3", "3b", "4", "5"}
    for s in seeds:  # the verdict across seeds uses the very rule each seed's rows were decided by
        for r in s["claims"]:
            assert decide(rule(r), r["low"], r["high"]) == r["verdict"], r["claim"]
    # the seed reached pretraining (other weights) and the data (other images, other effects)
    weights = [sorted(os.listdir(os.path.join(out, f"seed-{k}", "cache", "weights"))) for k in (0, 1)]
    assert weights[0] != weights[1]
    assert [r["effect"] for r in seeds[0]["claims"]] != [r["effect"] for r in seeds[1]["claims"]]
    for r in result["rows"]:
        assert [s["seed"] for s in r["seeds"]] == [0, 1]
        assert r["verdict"] == "inconclusive"  # two seeds are fewer than min_seeds=3
    lines = open(result["csv"]).read().splitlines()
    assert len(lines) == 1 + 3 * len(result["rows"])  # per row: two seeds and the pool
    assert all(os.path.isfile(p) for paths in result["figures"].values() for p in paths)


@pytest.mark.slow
def test_a_rerun_runs_nothing_and_a_merge_gives_the_same_pool(two_seeds, tmp_path):
    out, first = two_seeds
    again = replicate("0-1", jobs=2, quick=True, device="cpu", out_dir=out, options=TINY)
    assert again["run_seconds"] == {} and again["rows"] == first["rows"]
    merged = replicate(merge=[os.path.join(out, "seed-0"), os.path.join(out, "seed-1")],
                       out_dir=str(tmp_path / "merged"))
    assert merged["rows"] == first["rows"] and merged["claims"] == first["claims"]


@pytest.mark.slow
def test_store_seeds_resplit_and_leave_the_store_untouched(two_seeds, tmp_path):
    out, _ = two_seeds
    source = os.path.join(out, "seed-0", "cache", "demo")
    before = sorted(os.listdir(os.path.join(source, "heads")))
    stamp = os.stat(os.path.join(source, "store.h5")).st_mtime_ns
    config = dict(mode="store", store=source, demo=dict(alphas=[0.0, 10.0], n_boot=200,
                                                        tolerance=1.25))
    summaries = [store_seed(source, str(tmp_path / f"seed-{k}"), dict(config, seed=k))
                 for k in (0, 1)]
    splits = [FeatureStore(s["stores"][0]).samples.split for s in summaries]
    original = FeatureStore(source).samples
    assert not np.array_equal(splits[0], splits[1])
    assert not np.array_equal(splits[0], original.split)
    for split in splits:  # the same number of test images per class
        for c in np.unique(original.label):
            assert np.sum(split[original.label == c] == "test") == np.sum(
                original.split[original.label == c] == "test")
    demo_rows = [(r["id"], r["claim"]) for r in _summary(out, 0)["claims"] if r["id"] != "5"]
    assert [(r["id"], r["claim"]) for r in summaries[0]["claims"]] == demo_rows
    assert sorted(os.listdir(os.path.join(source, "heads"))) == before
    assert os.stat(os.path.join(source, "store.h5")).st_mtime_ns == stamp
    with h5py.File(os.path.join(summaries[0]["stores"][0], "store.h5"), "r") as index:
        assert "fg-all" in index["heads"]  # its own heads, fitted on its own split


@pytest.mark.slow
def test_report_has_a_replication_section(two_seeds, tmp_path):
    out, result = two_seeds
    written = report([], str(tmp_path / "report"), replicate=out)
    assert [s["id"] for s in written["sections"]] == ["replication"]
    assert len(written["sections"][0]["figures"]) == len(result["claims"])
    page = open(written["html"]).read()
    assert "Replication" in page and page.count("<img") == len(result["claims"])
    assert "What replication tests" in page and os.path.getsize(written["pdf"]) > 0

"""The command line: real commands end to end on tiny data, and one clear line per mistake."""
import json
import os

import pytest

from featlab.store.layout import WriterLock
from conftest import run_cli as run


@pytest.fixture(scope="module")
def cli_store(tmp_path_factory, tiny_weights):
    from featlab.data.synthetic import generate_synthetic

    base = tmp_path_factory.mktemp("cli")
    generate_synthetic(str(base / "data"), seed=1, n_images=64, image_size=32,
                       n_supercategories=2, classes_per_supercategory=2)
    store = base / "store"
    code, out = run("extract", "--dataset", "synthetic", "--root", base / "data", "--store", store,
                    "--conditions", "clean,blur:sigma=3:6", "--image-size", 32, "--device", "cpu",
                    "--batch-size", 16, "--chunk-size", 16,
                    "--weights", f"synthetic-object={tiny_weights['synthetic-object']}",
                    "--weights", f"synthetic-scene={tiny_weights['synthetic-scene']}")
    assert code == 0, out
    assert "blur:sigma=6:region=object" in out
    return base


def test_store_info(cli_store):
    code, out = run("store", "info", cli_store / "store")
    assert code == 0 and "synthetic-object" in out and "blur:sigma=3:region=object: complete" in out
    code, out = run("store", "info", cli_store / "store", "--json")
    assert json.loads(out)["n_samples"] == 64


def test_fit_head_writes_json_figures_and_heads(cli_store, tmp_path):
    out_json = tmp_path / "heads.json"
    code, out = run("fit-head", "--store", cli_store / "store", "--alpha", 0, "--alpha", 10,
                    "--json", out_json, "--out", tmp_path)
    assert code == 0, out
    result = json.loads(out_json.read_text())
    conditions = {r["condition"] for r in result["rows"]}
    assert conditions == {"clean", "blur:sigma=3:region=object", "blur:sigma=6:region=object"}
    assert {r["head"] for r in result["rows"]} == {"fg", "bg", "joint"}
    assert all(0 <= r["ci_low"] <= r["accuracy"] <= r["ci_high"] <= 1 for r in result["rows"])
    assert set(result["heads"]) == {"fg-all", "bg-all", "joint-all-alpha=0", "joint-all-alpha=10"}
    w = {x["alpha"]: x for x in result["weights"]}
    assert w[10.0]["fg"] < w[0.0]["fg"]  # the penalty shrinks the foreground block
    assert any(p.endswith(".pdf") for p in result["figures"]) and all(
        os.path.isfile(p) for p in result["figures"])
    code, out = run("store", "info", cli_store / "store")
    assert "joint-all-alpha=10" in out


def test_pca_shift_writes_numbers_and_figures(cli_store, tmp_path):
    code, out = run("pca-shift", "--store", cli_store / "store", "--condition", "blur:sigma=6",
                    "--out", tmp_path, "--permutations", 99, "--tolerance", 1.5, "--n-boot", 200)
    assert code == 0, out
    assert "stays_inside" in out and "residual_ratio" in out
    files = sorted(os.listdir(tmp_path))
    assert any(f.endswith(".png") for f in files) and any(f.endswith(".pdf") for f in files)
    result = json.loads((tmp_path / [f for f in files if f.endswith(".json")][0]).read_text())
    for stats in result["backbones"].values():
        assert stats["centroid_shift_mean"] > 0 and 0 <= stats["outside_fraction"] <= 1
        m = stats["membership"]
        assert m["tolerance"] == 1.5 and m["n_boot"] == 200 and m["n"] == stats["n"]
        assert m["ratio_low"] <= m["ratio"] <= m["ratio_high"]
        assert m["stays_inside"] in ("yes", "no", "inconclusive")


BAD = [
    (("extract", "--root", "/nonexistent/root", "--store", "{tmp}/s"), "no synthetic dataset at"),
    (("extract", "--root", "{tmp}", "--store", "{tmp}/s"), "annotations|no synthetic dataset"),
    (("extract", "--root", "{data}", "--store", "{tmp}/s", "--backbones", "resnet50,x"),
     "unknown backbone 'resnet50'"),
    (("extract", "--root", "{data}", "--store", "{tmp}/s", "--conditions", "fog:sigma=1"),
     "unknown perturbation 'fog'"),
    (("extract", "--root", "{data}", "--store", "{tmp}/s", "--conditions", "blur:sigma"),
     "expected .param=value."),
    (("extract", "--root", "{data}", "--store", "{tmp}/s", "--dataset", "imagenet"),
     "unknown dataset 'imagenet'"),
    (("extract", "--root", "{data}", "--store", "{tmp}/s", "--weights", "nonsense"),
     "expected BACKBONE=PATH"),
    (("fit-head", "--store", "{tmp}/nostore"), "no feature store"),
    (("pca-shift", "--store", "{store}", "--condition", "blur:sigma=99"), "not in store"),
    (("pca-shift", "--store", "{store}", "--condition", "clean"), "compares clean with itself"),
    (("fit-head", "--store", "{store}", "--subset", "tiny"), "subset 'tiny' is not defined"),
    (("fit-head", "--store", "{store}", "--alpha", "-1"), "must be >= 0"),
    # an option that holds one value, given twice: click would keep the last silently
    (("pca-shift", "--store", "{store}", "--store", "{tmp}/other", "--condition",
      "blur:sigma=3"), "--store given 2 times .*give it once"),
    (("fit-head", "--store", "{store}", "--out={tmp}/a", "--out", "{tmp}/b"),
     "--out given 2 times"),
    (("pca-shift", "--store", "{store}", "--condition", "blur:sigma=3", "-k", "2", "-k3"),
     "-k given 2 times \\(2, 3\\)"),
    # outputs that cannot be written, refused before any work
    (("fit-head", "--store", "{store}", "--json", "{tmp}"), "--json .* is a folder"),
    (("fit-head", "--store", "{store}", "--json", "{store}/manifest.json/r.json"),
     "manifest.json is a file, not a folder"),
    (("pca-shift", "--store", "{store}", "--condition", "blur:sigma=3", "--out",
      "{store}/manifest.json"), "--out .*manifest.json is a file, not a folder"),
]


@pytest.mark.parametrize("args,match", BAD)
def test_bad_input_is_one_line_exit_2(args, match, cli_store, tmp_path):
    import re

    fill = dict(tmp=tmp_path, data=cli_store / "data", store=cli_store / "store")
    code, out = run(*[a.format(**fill) for a in args])
    lines = [line for line in out.splitlines() if line.strip()]
    assert code == 2, out
    assert len(lines) == 1 and lines[0].startswith("featlab: error:"), out
    assert re.search(match, lines[0]), lines[0]


def test_locked_store_refuses_a_second_writer_and_loses_nothing(cli_store, tiny_weights):
    store = cli_store / "store"
    before = sorted(os.listdir(store / "conditions"))
    with WriterLock(str(store)):
        code, out = run("extract", "--dataset", "synthetic", "--root", cli_store / "data",
                        "--store", store, "--conditions", "clean,blur:sigma=9",
                        "--image-size", 32, "--device", "cpu",
                        "--weights", f"synthetic-object={tiny_weights['synthetic-object']}",
                        "--weights", f"synthetic-scene={tiny_weights['synthetic-scene']}")
    assert code == 2 and "being written by another featlab process" in out
    assert sorted(os.listdir(store / "conditions")) == before


def test_help_has_examples():
    for command in ("extract", "fit-head", "pca-shift", "demo", "store", "data", "mantel",
                    "isotropy", "symmetry", "lipschitz"):
        code, out = run(command, "--help")
        assert code == 0 and ("featlab " in out)

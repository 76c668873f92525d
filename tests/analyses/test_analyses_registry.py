"""Contract tests generated from the ANALYSES registry: every registered analysis runs on a
tiny store, returns a JSON-able dict, and with ``out_dir`` writes its JSON and its figures
(PNG + PDF) there. A new analysis must add its options to OPTIONS to pass."""
import json
import os

import pytest

from featlab.analyses import ANALYSES
from featlab.analyses.heads.run import fit_head
from featlab.extraction import ExtractionSpec, extract
from featlab.store import FeatureStore

OPTIONS = {
    "fit-head": dict(alphas=(0.0, 1.0)),
    "pca-shift": dict(condition="blur:sigma=2", permutations=9),
    "isotropy": dict(),
    "symmetry": dict(),
    "mantel": dict(permutations=9),
    "lipschitz": dict(),
    "robustness": dict(n_boot=100),
}


@pytest.fixture(scope="module")
def store(tmp_path_factory, tiny_weights):
    from featlab.data.synthetic import generate_synthetic

    root = str(tmp_path_factory.mktemp("data"))
    generate_synthetic(root, seed=5, n_images=40, image_size=32, n_supercategories=2,
                       classes_per_supercategory=2)
    path = str(tmp_path_factory.mktemp("registry") / "store")

    def run(conditions):
        extract(ExtractionSpec(store=path, root=root, dataset="synthetic", conditions=conditions,
                               device="cpu", batch_size=8, chunk_size=16, image_size=32,
                               weights=tiny_weights))

    run("clean,blur:sigma=2")
    fit_head(FeatureStore(path), alphas=(0.0,))
    run("isotropy:radius=1:4:copies=4:samples=3:threshold=0,"
        "symmetry:radius=1:4:copies=4:samples=3:threshold=0")
    return FeatureStore(path)


def test_every_analysis_has_options():
    assert set(ANALYSES.names()) == set(OPTIONS)


@pytest.mark.parametrize("name", ANALYSES.names())
def test_analysis_contract(name, store, tmp_path):
    out = tmp_path / name
    out.mkdir()
    result = ANALYSES.get(name)(store, out_dir=str(out), **OPTIONS[name])
    assert isinstance(result, dict)
    with open(result["json"]) as handle:
        assert json.load(handle)["figures"] == result["figures"]
    assert os.path.dirname(result["json"]) == str(out)
    assert result["figures"], f"{name} wrote no figure"
    for path in result["figures"]:
        assert os.path.dirname(path) == str(out) and os.path.getsize(path) > 1000
    assert {os.path.splitext(p)[1] for p in result["figures"]} == {".png", ".pdf"}


@pytest.mark.parametrize("name", ANALYSES.names())
def test_analysis_without_out_dir_writes_nothing(name, store, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    options = dict(OPTIONS[name], **({"save": False} if name == "fit-head" else {}))
    result = ANALYSES.get(name)(store, **options)
    assert "json" not in result and not result.get("figures")
    assert os.listdir(tmp_path) == []

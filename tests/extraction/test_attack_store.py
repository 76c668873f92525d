"""Gradient attacks as extraction conditions against heads fitted on the store."""
import numpy as np
import pytest

from featlab.analyses.heads.run import fit_head
from featlab.errors import FeatlabError
from featlab.extraction import ExtractionSpec, extract
from featlab.store import FeatureStore


@pytest.fixture(scope="module")
def attacked(tmp_path_factory, tiny_weights):
    from featlab.data.synthetic import generate_synthetic

    base = tmp_path_factory.mktemp("attacks")
    root = str(base / "data")
    generate_synthetic(root, seed=2, n_images=48, image_size=32, n_supercategories=2,
                       classes_per_supercategory=2)

    def run(conditions, store="store", weights=tiny_weights):
        return extract(ExtractionSpec(store=str(base / store), root=root, dataset="synthetic",
                                      conditions=conditions, device="cpu", batch_size=16,
                                      chunk_size=16, image_size=32, weights=weights))

    run("clean")
    fit_head(FeatureStore(str(base / "store")), alphas=(0.0, 10.0))
    summary = run("fgsm:eps=0.002:0.05:target=fg,fgsm:eps=0.05:target=joint,"
                  "pgd:eps=0.05:steps=5:target=joint,fgsm:eps=0.05:target=joint:head_alpha=10")
    return base, run, summary


def test_attack_conditions_are_stored_for_every_split(attacked):
    base, _, summary = attacked
    store = FeatureStore(str(base / "store"))
    key = store.resolve_condition("fgsm:eps=0.05:target=fg")
    info = store.condition_info(key)
    assert info["target"] == "fg" and info["head"] == "fg-all"
    assert info["head_settings"]["training_conditions"] == ["clean"]
    assert store.condition_info("fgsm:eps=0.05:target=joint:head_alpha=10")["head"] == \
        "joint-all-alpha=10"
    for split in ("train", "test"):
        x = store.read(backbone="synthetic-scene", layer="penultimate", condition=key, split=split)
        assert np.isfinite(x).all()
    success = store.read_array("attack/success", key)
    assert success.dtype == bool and len(success) == len(store.samples)


def test_attacks_hurt_their_target_and_grow_with_eps(attacked):
    base, _, _ = attacked
    store = FeatureStore(str(base / "store"))
    result = fit_head(store, alphas=(0.0, 10.0), save=False)
    acc = {(r["condition"], r["head"], r["alpha"]): r["accuracy"] for r in result["rows"]}
    weak, strong = (store.resolve_condition(f"fgsm:eps={e}:target=fg") for e in ("0.002", "0.05"))
    assert acc[(strong, "fg", None)] < acc[("clean", "fg", None)]
    assert acc[(strong, "fg", None)] <= acc[(weak, "fg", None)]
    joint = store.resolve_condition("fgsm:eps=0.05:target=joint")
    pgd = store.resolve_condition("pgd:eps=0.05:steps=5:target=joint")
    # the adaptive attack on the fused model is at least as strong against it as transfer
    assert acc[(joint, "joint", 0.0)] <= acc[(strong, "joint", 0.0)]
    assert acc[(pgd, "joint", 0.0)] <= acc[(joint, "joint", 0.0)] + 1e-9
    rates = result["attacks"]
    assert rates[strong]["success_rate"] >= rates[weak]["success_rate"]
    assert rates[pgd]["head"] == "joint-all-alpha=0"


def test_missing_head_names_the_fit_head_command(attacked):
    _, run, _ = attacked
    with pytest.raises(FeatlabError, match=r"featlab fit-head --store .* --alpha 3"):
        run("fgsm:eps=0.05:target=joint:head_alpha=3")


def test_joint_target_needs_two_backbones(attacked, tiny_weights):
    base, _, _ = attacked
    from featlab.data.synthetic import generate_synthetic  # noqa: F401

    single = ExtractionSpec(store=str(base / "single"), root=str(base / "data"),
                            dataset="synthetic", backbones=("synthetic-object",), conditions="clean",
                            device="cpu", batch_size=16, chunk_size=16, image_size=32,
                            weights=tiny_weights)
    extract(single)
    single.conditions = "fgsm:eps=0.05:target=joint"
    with pytest.raises(FeatlabError, match="target=joint needs two backbones"):
        extract(single)


def test_rerun_of_attacks_is_a_noop(attacked):
    _, run, _ = attacked
    summary = run("fgsm:eps=0.002:0.05:target=fg")
    assert all(v["computed"] == 0 for v in summary["conditions"].values())

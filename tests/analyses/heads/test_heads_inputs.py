"""fit-head on any number of inputs with any head type: --head/--inputs/--penalty (CLI) and
fit_head(head=, inputs=, penalty=) (Python), on a written store with three backbones."""
import json
import os

import numpy as np
import pytest
from click.testing import CliRunner

from featlab.analyses.heads.correct import head_predictions
from featlab.analyses.heads.run import fit_head
from featlab.cli.main import cli
from featlab.heads.records import head_from_arrays
from featlab.store import FeatureStore
from featlab.store.heads import list_heads, load_head
from conftest import one_error_line

OBJ, SCENE, THIRD = "synthetic-object", "synthetic-scene", "third"
BLUR = "blur:sigma=2:region=object"
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _write_store(path, n=240, seed=0):
    """Three 6-d backbones over n images of 4 classes: the object one carries the class
    clearly, the scene one weakly, the third not at all. Under BLUR the object features
    are replaced by noise."""
    from featlab.data.base import SampleTable
    from featlab.store import StoreWriter

    labels = (np.arange(n) // 2) % 4  # every class in both splits
    split = np.array(["train", "test"] * (n // 2))
    samples = SampleTable(np.arange(n), np.array([f"{i}.jpg" for i in range(n)]), labels,
                          np.array([f"c{k}" for k in labels]), np.array(["s"] * n), split,
                          np.full((n, 2, 4), np.nan, np.float32), np.full(n, 32), np.full(n, 32),
                          ["c0", "c1", "c2", "c3"], ["s"] * 4)
    roles = {OBJ: "object", SCENE: "scene", THIRD: None}
    meta = {b: dict(weights_sha256="0" * 64, role=r, layers={"penultimate": 6})
            for b, r in roles.items()}
    rng = np.random.default_rng(seed)
    onehot = np.eye(6)[labels]
    clean = {OBJ: rng.normal(size=(n, 6)) + 2.5 * onehot, SCENE: rng.normal(size=(n, 6)) + 0.6 *
             onehot, THIRD: rng.normal(size=(n, 6))}
    blurred = dict(clean, **{OBJ: rng.normal(size=(n, 6))})
    with StoreWriter(str(path), samples=samples, backbones=meta, dataset_spec={"name": "t"},
                     chunk_size=n) as writer:
        for key, feats in (("clean", clean), (BLUR, blurred)):
            writer.add_condition(key, {"name": key.split(":")[0], "params": {}})
            writer.write_part(key, 0, n, {**{f"{b}/penultimate": f.astype("f4")
                                             for b, f in feats.items()},
                                          "valid": np.ones(n, bool)})
        writer.rebuild_index()
    return str(path)


@pytest.fixture(scope="module")
def store_path(tmp_path_factory):
    return _write_store(tmp_path_factory.mktemp("three") / "store")


def _cli(*args):
    return CliRunner().invoke(cli, ["fit-head", *args])


def test_cli_fits_scores_and_saves_a_gated_head_on_three_inputs(store_path, tmp_path):
    out = tmp_path / "out"
    res = _cli("--store", store_path, "--head", "gated", "--inputs", f"{OBJ},{SCENE},{THIRD}",
               "--penalty", f"{SCENE}=5", "--out", str(out), "--json", str(tmp_path / "r.json"))
    assert res.exit_code == 0, res.output
    name = f"gated-{OBJ}+{SCENE}+{THIRD}-all-{SCENE}=5"
    assert f"gated heads on inputs {OBJ},{SCENE},{THIRD}" in res.output
    assert f"{name}: gate {OBJ}" in res.output and name in list_heads(store_path)
    result = json.loads((tmp_path / "r.json").read_text())
    rows = {r["condition"]: r for r in result["rows"]}
    assert rows["clean"]["accuracy"] > 0.8 and sum(rows["clean"]["gate"]) == pytest.approx(1)
    arrays, attrs = load_head(store_path, name)
    assert attrs["head_type"] == "gated" and attrs["inputs"] == [OBJ, SCENE, THIRD]
    assert attrs["penalty"] == {OBJ: 0.0, SCENE: 5.0, THIRD: 0.0}
    assert attrs["penalty_mean"][SCENE] == pytest.approx(5.0 / 120)
    # the stored head predicts what was scored
    got = head_predictions(FeatureStore(store_path), [name], BLUR)
    assert np.mean(got["predictions"][name] == got["labels"]) == pytest.approx(
        rows[BLUR]["accuracy"])


def test_python_mlp_on_the_roles_sweeps_the_foreground_penalty(store_path):
    store = FeatureStore(store_path)
    result = fit_head(store, head="mlp", alphas=(0.0, 500.0), width=4, save=False)
    assert result["inputs"] == [OBJ, SCENE] and result["alphas"] == [0.0, 500.0]
    weights = {w["head"]: w for w in result["weights"]}
    free, held = weights["mlp-joint-all-alpha=0"], weights["mlp-joint-all-alpha=500"]
    assert held[OBJ] < 0.5 * free[OBJ]
    rows = {(r["head"], r["condition"]): r for r in result["rows"]}
    assert rows[("mlp-joint-all-alpha=0", "clean")]["penalty_alpha"] == 0.0


def test_linear_inputs_head_is_the_joint_head(store_path, tmp_path):
    """Linear on [object, scene] with the object penalized by alpha is the paper's joint
    head with that alpha: the same solution, the same stored arrays."""
    store = FeatureStore(_write_store(tmp_path / "s"))
    fit_head(store, alphas=(20.0,))
    fit_head(store, inputs=[OBJ, SCENE], penalty={OBJ: 20})
    joint = load_head(store.path, "joint-all-alpha=20")[0]
    mine = load_head(store.path, f"linear-{OBJ}+{SCENE}-all-{OBJ}=20")[0]
    assert all(np.array_equal(joint[k], mine[k]) for k in joint)


def test_stored_heads_load_as_their_types(store_path, tmp_path):
    store = FeatureStore(_write_store(tmp_path / "s"))
    result = fit_head(store, head="mlp", inputs=f"{THIRD},{OBJ}", width=3)
    (name,) = result["heads"]
    head = head_from_arrays(*load_head(store.path, name))
    assert type(head).__name__ == "MLPHead" and head.input_dims_ == [6, 6]
    got = head_predictions(store, [name], "clean")
    assert np.mean(got["predictions"][name] == got["labels"]) == pytest.approx(
        next(r["accuracy"] for r in result["rows"] if r["condition"] == "clean"))


@pytest.mark.parametrize("args, message", [
    (["--head", "forest"], "Invalid value for '--head'"),
    (["--inputs", "object,nope"], "--inputs 'object': no backbone 'object'"),
    (["--inputs", f"{OBJ},{OBJ}"], "give one or more distinct backbones"),
    (["--inputs", f"{OBJ}/logits"], f"layer 'logits' is not stored for {OBJ}"),
    (["--inputs", f"{OBJ},{THIRD}", "--penalty", "object"], "expected INPUT=VALUE"),
    (["--inputs", f"{OBJ},{THIRD}", "--penalty", f"{SCENE}=1"], f"--penalty names '{SCENE}'"),
    (["--inputs", f"{OBJ},{THIRD}", "--penalty", f"{OBJ}=-1"], "a penalty must be >= 0"),
    (["--inputs", f"{SCENE},{THIRD}", "--alpha", "10"], "--alpha penalizes the foreground"),
    (["--head", "gated", "--width", "8"], "--width sets the mlp head's hidden units"),
    (["--head", "mlp", "--train-on", "clean"], "--train-on go with the paper's linear"),
])
def test_user_mistakes_are_one_line_and_write_nothing(store_path, args, message):
    before = sorted(os.listdir(os.path.join(store_path, "heads"))) if os.path.isdir(
        os.path.join(store_path, "heads")) else []
    res = _cli("--store", store_path, *args)
    assert res.exit_code == 2, res.output
    line = one_error_line(res.output) if "Invalid value" not in res.output else res.output
    assert message in line, res.output
    after = sorted(os.listdir(os.path.join(store_path, "heads"))) if os.path.isdir(
        os.path.join(store_path, "heads")) else []
    assert after == before

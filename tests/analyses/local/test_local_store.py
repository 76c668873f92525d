"""Local-property probes through the store: extraction, the four analyses, the CLI, bad input."""
import copy
import json
import os
import shutil

import h5py
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from scipy.spatial.distance import pdist, squareform

from conftest import edit_recorded_h5
from featlab.analyses.local import clever_u, gradient_lipschitz
from featlab.probes.sets import (isotropy_perturbations, sample_seed,
                                 symmetry_perturbations)
from featlab.errors import FeatlabError
from featlab.extraction import ExtractionSpec, extract
from featlab.conditions import parse_conditions
from featlab.perturbations import PERTURBATIONS
from featlab.probes import PROBES as PROBE_SETS
from featlab.store import FeatureStore
from featlab.store.heads import load_head
from featlab.utils.seeding import derive_seed

PROBES = ("isotropy:radius=1:8:copies=5:samples=3:threshold=0,"
          "symmetry:radius=1:8:copies=5:samples=3:threshold=0")
ISO = "isotropy:radius={}:copies=5:samples=3:threshold=0:select=fg"
PROBE_KINDS = PROBE_SETS.names()


def _spec(root, store, weights, conditions, **kw):
    return ExtractionSpec(**dict(dict(store=str(store), root=root, dataset="synthetic",
                                      conditions=conditions, device="cpu", batch_size=8,
                                      chunk_size=8, image_size=32, weights=weights), **kw))


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory):
    from featlab.data.synthetic import generate_synthetic

    root = tmp_path_factory.mktemp("synthetic")  # 4 classes keep heads and CLEVER quick
    generate_synthetic(str(root), seed=3, n_images=48, image_size=32, n_supercategories=2,
                       classes_per_supercategory=2)
    return str(root)


@pytest.fixture(scope="module")
def stores(synthetic_root, tiny_weights, tmp_path_factory):
    """(probed store, copy of it before probes were extracted)."""
    from featlab.analyses.heads.run import fit_head

    base = tmp_path_factory.mktemp("local")
    path = base / "store"
    extract(_spec(synthetic_root, path, tiny_weights, "clean"))
    fit_head(FeatureStore(str(path)), alphas=(0.0,), subset="all")
    shutil.copytree(path, base / "noprobe")
    extract(_spec(synthetic_root, path, tiny_weights, PROBES))
    return str(path), str(base / "noprobe")


@pytest.fixture(scope="module")
def store(stores):
    return FeatureStore(stores[0])


def _rows(store, key=ISO.format(1)):
    return np.flatnonzero(store.read_array("probed", key))


# ---------------------------------------------------------------- probe conditions

@pytest.mark.parametrize("name", PROBE_KINDS)
def test_probe_contract(name):
    probe = PROBE_SETS.get(name)()
    a = probe.probe_set((3, 6, 5), radius=4.0, copies=7, seed=11)
    assert a.shape == (7, 3, 6, 5) and a.dtype == torch.float32
    torch.testing.assert_close(torch.linalg.vector_norm(a.double().flatten(1), dim=1),
                               torch.full((7,), 4 / 255, dtype=torch.float64), rtol=1e-6, atol=0)
    assert torch.equal(a, probe.probe_set((3, 6, 5), radius=4.0, copies=7, seed=11))
    assert not torch.equal(a, probe.probe_set((3, 6, 5), radius=4.0, copies=7, seed=12))
    keys = [c.key for c in parse_conditions(f"{name}:radius=0.5:2")]
    assert keys == [f"{name}:radius={r}:copies=16:samples=24:threshold=0.99:select=fg"
                    for r in ("0.5", "2")]
    with pytest.raises(FeatlabError, match="copies=2: at least 3"):
        parse_conditions(f"{name}:radius=1:copies=2")
    with pytest.raises(FeatlabError, match="must be > 0"):
        parse_conditions(f"{name}:radius=0")
    assert not hasattr(probe, "perturb")  # a probe set is its own family, not a perturbation
    assert name not in PERTURBATIONS and parse_conditions(f"{name}:radius=1")[0].family == "probe"


def test_stored_layout_and_selection(store):
    n = len(store.samples)
    keys = [k for k in store.conditions if k != "clean"]
    assert len(keys) == 4
    rows = _rows(store)
    assert len(rows) == 3 and (store.samples.split[rows] == "test").all()
    for key in keys:  # one selection for every radius and both kinds
        np.testing.assert_array_equal(np.flatnonzero(store.read_array("probed", key)), rows)
    with h5py.File(store.index_path, "r") as f:
        g = f["conditions"][ISO.format(8)]
        assert g["synthetic-object/penultimate"].shape == (n, 5, 512)
        assert g["synthetic-scene/layer1.0.bn1"].shape == (n, 5, 64)
        assert g["clean/synthetic-scene/penultimate"].shape == (n, 512)
        assert g["input_pdist"].shape == (n, 10) and g["input_pdist"].dtype == np.float64
        assert g["norms"].shape == (n, 5) and g["input_range"].shape == (n, 2)
        assert sorted(g["scores"]) == ["bg-all", "fg-all", "joint-all-alpha=0"]
        unprobed = np.setdiff1d(np.arange(n), rows)
        assert np.isnan(g["synthetic-object/logits"][unprobed[0]]).all()
        assert np.isfinite(g["input_range"][()]).all()  # every decoded row, for h
    # the clean reference fed with the copies is the clean condition's image
    clean = store.read(backbone="synthetic-object", layer="penultimate")[rows]
    ref = FeatureStore(store.path).read_array("clean/synthetic-object/penultimate", ISO.format(1))
    np.testing.assert_allclose(ref[rows], clean, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", ["isotropy", "symmetry"])
def test_same_copies_reached_both_backbones(store, synthetic_root, tiny_weights, kind):
    from featlab.extraction.forward import forward
    from featlab.extraction.pipeline import build_backbones, load_dataset

    spec = _spec(synthetic_root, store.path, tiny_weights, "clean")
    dataset = load_dataset(spec)
    models = build_backbones(spec, dataset, torch.device("cpu"))
    key = ISO.replace("isotropy", kind).format(8)
    for row in _rows(store, key)[:2]:
        x = torch.from_numpy(dataset.load(int(row))[0])
        seed = sample_seed(0, store.samples.image_id[row])
        v = (isotropy_perturbations(x.shape, [8.0], 5, seed)[0] if kind == "isotropy"
             else symmetry_perturbations(x.shape, 5, seed, 8.0))
        fed = x.double()[None] + v.double()  # formed in float64, fed to float64 copies
        norms = store.read_array("norms", key)[row]
        np.testing.assert_allclose(norms, 255 * (fed - x).double().flatten(1).norm(dim=1).numpy(),
                                   rtol=1e-12)
        np.testing.assert_allclose(store.read_array("input_pdist", key)[row],
                                   255 * pdist(fed.double().flatten(1).numpy()), rtol=1e-9)
        feats = forward(models, fed.float())
        for name in ("synthetic-object/penultimate", "synthetic-scene/layer3.1.bn2"):
            np.testing.assert_allclose(store.read_array(name, key)[row], feats[name],
                                       rtol=1e-4, atol=1e-5)


def test_rerun_is_a_noop(stores, synthetic_root, tiny_weights):
    def stamps():
        return {p: os.stat(os.path.join(d, p)).st_mtime_ns
                for d, _, ps in os.walk(os.path.join(stores[0], "conditions")) for p in ps}

    before = stamps()
    summary = extract(_spec(synthetic_root, stores[0], tiny_weights, PROBES))
    assert all(v["computed"] == 0 for v in summary["conditions"].values())
    assert stamps() == before


# ---------------------------------------------------------------- analyses vs direct math

def test_isotropy_ranges_are_max_minus_min_of_stored_scores(store):
    from featlab.analyses.local.run import score_ranges

    result = score_ranges(store, kind="isotropy", heads=["fg-all"])
    rows = _rows(store)
    for k, r in enumerate([1.0, 8.0]):
        s = store.read_array("scores/fg-all", ISO.format(r))[rows]
        pred = store.read_array("pred/fg-all", ISO.format(r))[rows]
        got = [x for x in result["rows"] if x["radius"] == r]
        np.testing.assert_array_equal([x["range"] for x in got], s.max(1) - s.min(1))
        clean_ok = store.read_array("clean_pred/fg-all", ISO.format(r))[rows] == \
            store.samples.label[rows]  # only images the head gets right when clean count
        np.testing.assert_array_equal([x["clean_correct"] for x in got], clean_ok)
        np.testing.assert_array_equal([x["misclassified_any"] for x in got],
                                      (pred != store.samples.label[rows, None]).any(1)
                                      & clean_ok)
    assert {x["head"] for x in result["rows"]} == {"fg-all"}


@pytest.mark.parametrize("method", ["pearson", "spearman"])
def test_mantel_equals_skbio_on_stored_matrices(store, method):
    skbio_mantel = pytest.importorskip("skbio.stats.distance").mantel
    from featlab.analyses.local.run import mantel

    result = mantel(store, radii=[8], layers=["layer1.0.bn1", "penultimate"], method=method,
                          permutations=99, seed=5)
    rows = _rows(store, ISO.format(8))
    for got in [r for r in result["rows"] if r["backbone"] == "synthetic-scene"]:
        row = rows[result["image_ids"].index(got["image_id"])]
        x = store.read_array("input_pdist", ISO.format(8))[row]
        name = f"synthetic-scene/{got['layer']}"  # copies = clean + the float64 differences
        f = store.read_array(f"clean/{name}", ISO.format(8))[row].astype(np.float64) + \
            store.read_array(f"delta/{name}", ISO.format(8))[row].astype(np.float64)
        r, p, n = skbio_mantel(squareform(x), squareform(pdist(f)),
                               method=method, permutations=99, seed=5)
        assert n == 5 and got["r"] == pytest.approx(r, abs=1e-12) and got["p"] == p


def test_lipschitz_ratios_equal_a_direct_computation(store):
    from featlab.analyses.local.run import lipschitz

    result = lipschitz(store, layers=["layer2.0.bn1"], backbones=["synthetic-object"])
    name, key = "synthetic-object/layer2.0.bn1", ISO.format(8)
    train = store.rows("train")
    clean = store.read(backbone="synthetic-object", layer="layer2.0.bn1", split="train")
    g = clean.astype(np.float64).max() - clean.astype(np.float64).min()
    rng = store.read_array("input_range", key)[train]
    h = rng.max() - rng.min()
    rows = _rows(store, key)
    c = store.read_array(f"clean/{name}", key)[rows].astype(np.float64)
    f = c[:, None] + store.read_array(f"delta/{name}", key)[rows].astype(np.float64)
    np.testing.assert_allclose(f, store.read_array(name, key)[rows], rtol=1e-5, atol=1e-6)
    v = store.read_array("norms", key)[rows] / 255
    ratio = np.linalg.norm(f - c[:, None], axis=-1) / g / (v / h)
    got = [s for s in result["samples"] if s["radius"] == 8.0]
    np.testing.assert_allclose([s["ratio_max"] for s in got], ratio.max(1), rtol=1e-9)
    np.testing.assert_allclose([s["raw_ratio_max"] for s in got],
                               (np.linalg.norm(f - c[:, None], axis=-1) / v).max(1), rtol=1e-9)


def test_bounds_equal_direct_clever_and_gradient(store, tiny_weights):
    from featlab.analyses.local.bounds import lipschitz_bounds
    from featlab.backbones.classifier import classifier_from_head
    from featlab.extraction.rebuild import rebuild
    from featlab.analyses.local.family import choose_family

    family = choose_family(store, "isotropy")
    rows = _rows(store)
    out = lipschitz_bounds(store, family, [1.0, 8.0], rows, heads=["fg-all"],
                           nb_batches=3, batch_size=1, pool_factor=2, clever_radius=3.0,
                           max_samples=1, n_points=2)
    (got,) = out["rows"]
    dataset, models = rebuild(store)
    model = classifier_from_head(*load_head(store.path, "fg-all"), models)
    x = torch.from_numpy(dataset.load(int(rows[0]))[0])
    seed = derive_seed("lipschitz-bounds", 0, store.samples.image_id[rows[0]]) % 2 ** 32
    label = int(store.samples.label[rows[0]])
    assert got["clever"] == clever_u(model, x.numpy(), 3, 1, 3 / 255, 2, pool_factor=2,
                                     random_state=seed, clip_values=(0.0, 1.0))
    assert got["gradient"] == gradient_lipschitz(model, x, 2, radius=3 / 255, n_points=2,
                                                 label=label, random_state=seed)


# ---------------------------------------------------------------- constructed ground truth

class _Scale(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c

    def forward(self, x):
        return x * self.c


def _linear_builder(name, c, classes):
    from featlab.backbones.base import Backbone

    class Linear(Backbone):
        def set_normalization(self, normalization):  # keep phi(x) = c x exactly
            super().set_normalization(((0.0,) * 3, (1.0,) * 3))

    def build(weights=None, cache_dir=None):
        net = torch.nn.Module()
        for part in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"):
            setattr(net, part, torch.nn.Identity())
        net.avgpool = _Scale(c)
        torch.manual_seed(classes)
        net.fc = torch.nn.Linear(3 * 8 * 8, classes)
        return Linear(name, net, weights_sha256=f"linear-{c}")

    return build


@pytest.fixture(scope="module")
def linear_store(synthetic_root, tmp_path_factory):
    """Backbones phi(x) = 2x and 0.5x (exact in float32) on 8 px images, probed."""
    from featlab.analyses.heads.run import fit_head
    from featlab.backbones import BACKBONES

    made = {"linear-object": _linear_builder("linear-object", 2.0, 5),
            "linear-scene": _linear_builder("linear-scene", 0.5, 3)}
    for name, build in made.items():
        BACKBONES.register(name)(build)
    try:
        path = tmp_path_factory.mktemp("linear") / "store"
        spec = dict(backbones=tuple(made), image_size=8)
        extract(_spec(synthetic_root, path, {}, "clean", **spec))
        fit_head(FeatureStore(str(path)), alphas=(0.0,), subset="all")
        extract(_spec(synthetic_root, path, {}, "isotropy:radius=2:6:20:copies=4:samples=3:"
                      "threshold=0", **spec))
        yield FeatureStore(str(path))
    finally:
        for name in made:
            BACKBONES._entries.pop(name, None)


def test_linear_map_gives_lipschitz_c_and_mantel_one(linear_store):
    from featlab.analyses.local.run import lipschitz, mantel

    result = lipschitz(linear_store)
    for summary in result["layers"]:
        c = 2.0 if summary["backbone"] == "linear-object" else 0.5
        assert summary["raw_ratio_median"] == pytest.approx(c, rel=1e-12)
        # global min-max normalizers rescale phi by 1/(c * input range): ratio 1
        assert summary["ratio_median"] == pytest.approx(1.0, rel=1e-6)
    raw = np.array([s["raw_ratio_max"] for s in result["samples"]])
    np.testing.assert_allclose(raw[:len(raw) // 2], 2.0, rtol=1e-12)
    mantel = mantel(linear_store, permutations=19)
    np.testing.assert_allclose([r["r"] for r in mantel["rows"]], 1.0, atol=1e-9)


# ---------------------------------------------------------------- CLI and bad input

def _cli(args):
    from featlab.cli.main import cli

    return CliRunner().invoke(cli, args)


@pytest.mark.parametrize("command,extra", [
    ("isotropy", ["--layer", "penultimate"]),
    ("symmetry", ["--head", "fg-all"]),
    ("mantel", ["--radius", "1", "--radius", "8", "--permutations", "49", "--layer", "bn1"]),
    ("lipschitz", ["--backbone", "synthetic-scene", "--bounds", "--head", "bg-all",
                   "--nb-batches", "2", "--batch-size", "1", "--pool-factor", "2",
                   "--max-samples", "1"]),
])
def test_cli_writes_json_png_pdf(store, tmp_path, command, extra):
    out = tmp_path / command
    res = _cli([command, "--store", store.path, "--out", str(out)] + extra)
    assert res.exit_code == 0, res.output
    (js,) = out.glob("*.json")
    payload = json.loads(js.read_text())
    assert payload["n_samples"] == 3 and payload["kind"] == ("symmetry" if command == "symmetry"
                                                             else "isotropy")
    for path in payload["figures"]:
        assert os.path.getsize(path) > 1000
    assert {os.path.splitext(p)[1] for p in payload["figures"]} == {".png", ".pdf"}


def _one_line_error(args, match):
    res = _cli(args)
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("featlab: error:"), res.output
    assert match in lines[0], lines[0]


def test_bad_input_is_one_line(stores, store, tmp_path, synthetic_root):
    path, noprobe = stores
    _one_line_error(["mantel", "--store", noprobe],
                    f"add them with: featlab extract --store {noprobe} --dataset synthetic --root")
    _one_line_error(["isotropy", "--store", path, "--radius", "3"], "extracted: 1, 8")
    _one_line_error(["extract", "--root", synthetic_root, "--store", str(tmp_path / "x"),
                     "--conditions", "isotropy:radius=1:copies=2"], "at least 3")
    _one_line_error(["isotropy", "--store", path, "--probe", "isotropy:copies=9"],
                    "stored: isotropy:copies=5")
    broken = tmp_path / "broken"
    shutil.copytree(path, broken)
    row = int(_rows(store)[0])
    start = row // 8 * 8
    part = next((broken / "conditions").glob("isotropy_radius=8*")) / \
        f"part-{start:09d}-{min(start + 8, len(store.samples)):09d}.h5"
    edit_recorded_h5(part, lambda handle: handle["delta/synthetic-object/penultimate"].__setitem__(
        (row % 8, 0, 0), np.inf))  # what mantel reads
    _one_line_error(["mantel", "--store", str(broken), "--backbone", "synthetic-object"],
                    "non-finite")


def test_probe_extraction_needs_heads_and_reachable_threshold(stores, synthetic_root,
                                                              tiny_weights, tmp_path):
    bare = tmp_path / "bare"
    shutil.copytree(stores[1], bare)
    def uniform(head):  # p = 1/4 everywhere
        head["coef"][...] = 0
        head["intercept"][...] = 0

    edit_recorded_h5(bare / "heads" / "fg-all.h5", uniform)
    with pytest.raises(FeatlabError, match=r"no test image reaches threshold=0.5 .* 0.25\)"):
        extract(_spec(synthetic_root, bare, tiny_weights, "isotropy:radius=1:threshold=0.5"))
    shutil.rmtree(bare / "heads")
    with pytest.raises(FeatlabError, match=f"fit it: featlab fit-head --store {bare}"):
        extract(_spec(synthetic_root, bare, tiny_weights, "symmetry:radius=1:select=bg"))


# ---------------------------------------------------------------- probe precision

def _delta_reference(model, x, v, layer):
    """``f(x+v) - f(x)`` through an independent float64 copy of ``model``, x and x+v fed
    separately (not in one batch)."""
    from featlab.backbones.base import capture_features

    twin = copy.deepcopy(model).double()
    out = []
    with torch.inference_mode():
        for batch in (x.double()[None], x.double()[None] + v.double()):
            with capture_features(twin, [layer]) as feats:
                twin(batch)
            out.append(feats[layer].numpy())
    return out[1] - out[0]


@pytest.mark.slow
def test_probe_differences_match_a_float64_reference(stores, synthetic_root, tiny_weights,
                                                     tmp_path, caplog):
    from featlab.analyses.local.run import isotropy
    from featlab.extraction.forward import forward
    from featlab.extraction.pipeline import build_backbones, load_dataset

    path = tmp_path / "precise"
    shutil.copytree(stores[1], path)
    # 1e-13: every copy rounds back to the clean image (below the noise floor, warned)
    extract(_spec(synthetic_root, path, tiny_weights,
                  "isotropy:radius=1e-13:0.1:1:copies=3:samples=1:threshold=0"))
    assert "below the noise floor" in caplog.text
    st = FeatureStore(str(path))
    spec = _spec(synthetic_root, path, tiny_weights, "clean")
    dataset = load_dataset(spec)
    models = {m.name: m for m in build_backbones(spec, dataset, torch.device("cpu"))}
    worst = {}
    for radius in (0.1, 1.0):
        key = f"isotropy:radius={radius:g}:copies=3:samples=1:threshold=0:select=fg"
        info = st.condition_info(key)
        assert info["probe_precision"].startswith("float64")
        for row in np.flatnonzero(st.read_array("probed", key)):
            x = torch.from_numpy(dataset.load(int(row))[0])
            v = isotropy_perturbations(x.shape, [radius], 3,
                                       sample_seed(0, st.samples.image_id[row]))[0]
            for name in ("synthetic-object/penultimate", "synthetic-scene/layer2.0.bn1"):
                backbone, layer = name.split("/")
                ref = _delta_reference(models[backbone], x, v, layer)
                stored = st.read_array(f"delta/{name}", key)[row]
                err = np.linalg.norm(stored - ref, axis=1) / np.linalg.norm(ref, axis=1)
                assert err.max() < 0.01, (radius, name, err)
                f32 = forward(list(models.values()), (x[None] + v).float())[name] - \
                    forward(list(models.values()), x[None])[name]
                worst[radius, name] = (err.max(), (np.linalg.norm(f32 - ref, axis=1)
                                                   / np.linalg.norm(ref, axis=1)).max())
                noise = st.read_array(f"noise/{name}", key)[row]
                assert 0 < noise < 1e-9 * np.linalg.norm(ref)
    print("relative error of differences (float64 path, float32 path):", worst)
    result = isotropy(st, radii=[0.1, 1], layers=["penultimate"])
    assert {r["radius"] for r in result["noise"]} == {0.1, 1.0}
    assert not result.get("notes")  # both radii are far above the float64 noise floor
    tiny = isotropy(st, radii=[1e-13], layers=["penultimate"])
    assert any("below the noise floor" in note for note in tiny["notes"])

"""Corruption conditions: ImageNet-C against imagecorruptions-imaug, the M-TLAT extras against
constructed truth, regions, seeding, and the per-image work in the decode workers."""
import inspect
import math

import numpy as np
import pytest
import torch

imagecorruptions = pytest.importorskip("imagecorruptions")

from featlab.errors import FeatlabError  # noqa: E402
from featlab.extraction import ExtractionSpec, extract  # noqa: E402
from featlab.extraction.cpu_perturb import PerImagePlan  # noqa: E402
from featlab.extraction.decode import iter_chunks  # noqa: E402
from featlab.extraction.pipeline import load_dataset  # noqa: E402
from featlab.analyses.inputs import condition_family  # noqa: E402
from featlab.conditions import parse_condition, parse_conditions  # noqa: E402
from featlab.perturbations import PERTURBATIONS  # noqa: E402
from featlab.perturbations.color_shift import ColorShift  # noqa: E402
from featlab.perturbations.corrupt import IMAGENET_C, from_uint8_hwc  # noqa: E402
from featlab.perturbations.occlude import GREY, Occlude  # noqa: E402
from featlab.perturbations.rotate import Rotate, rotate_array  # noqa: E402
from featlab.perturbations.translate import Translate, translate_array  # noqa: E402
from featlab.store import FeatureStore  # noqa: E402

NAN_BOXES = np.full((2, 4), np.nan, dtype=np.float32)
SEEDED = {"glass_blur", "impulse_noise"}  # take seed=...; the rest draw from np.random
EXTRAS = ("rotate", "translate", "color", "occlude")


def _image(size, seed=0):
    """A uint8 (H, W, 3) image with structure (gradients) and texture (noise)."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 1, size)
    base = np.stack([np.outer(ramp, 1 - ramp), np.outer(1 - ramp, ramp),
                     np.outer(ramp, ramp)], -1) * 180
    return np.clip(base + rng.integers(0, 70, (size, size, 3)), 0, 255).astype(np.uint8)


def _reference(image_u8, name, severity, seed):
    kwargs = {"seed": seed} if name in SEEDED else {}
    np.random.seed(seed)
    return imagecorruptions.corrupt(image_u8, severity=severity, corruption_name=name, **kwargs)


def test_the_seeded_corruptions_are_the_ones_with_a_seed_argument():
    with_seed = {n for n in IMAGENET_C
                 if "seed" in inspect.signature(imagecorruptions.corruption_dict[n]).parameters}
    assert with_seed == SEEDED
    assert tuple(imagecorruptions.get_corruption_names("common")) == IMAGENET_C


@pytest.mark.parametrize("name", IMAGENET_C)
@pytest.mark.parametrize("size,severities", [(224, (3,)), (64, (1, 2, 3, 4, 5))])
def test_equals_imagecorruptions_on_identical_seeds(name, size, severities):
    """Exact: the package returns uint8 and featlab hands it round(255 x) of a k/255 image."""
    image_u8 = _image(size)
    corrupt = PERTURBATIONS.get("corrupt")()
    for severity in severities:
        seed = 1000 + severity
        ours = corrupt.perturb_image(from_uint8_hwc(image_u8), NAN_BOXES, seed, name=name,
                                     severity=severity, region="all")
        ref = _reference(image_u8, name, severity, seed)
        assert ours.dtype == np.float32 and ours.shape == (3, size, size)
        np.testing.assert_array_equal(ours, from_uint8_hwc(ref))


def test_numpy_global_state_is_restored_and_the_seed_matters():
    corrupt = PERTURBATIONS.get("corrupt")()
    image = from_uint8_hwc(_image(48))
    np.random.seed(5)
    expected = np.random.random(3)
    np.random.seed(5)
    outputs = {s: corrupt.perturb_image(image, NAN_BOXES, s, name="gaussian_noise", severity=2)
               for s in (1, 2)}
    np.testing.assert_array_equal(np.random.random(3), expected)
    assert not np.array_equal(outputs[1], outputs[2])
    random_ones = ("gaussian_noise", "shot_noise", "impulse_noise", "glass_blur", "motion_blur",
                   "snow", "frost", "fog", "elastic_transform")
    for name in random_ones:
        a, b = (corrupt.perturb_image(image, NAN_BOXES, s, name=name, severity=3) for s in (1, 2))
        assert not np.array_equal(a, b), name


@pytest.mark.parametrize("name", IMAGENET_C)
def test_contract_for_every_imagenet_c_corruption_on_tiny_images(name):
    """16 px images (below the package's 32 px minimum) are reflected to 32 and cut back."""
    images = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    (cond,) = parse_condition(f"corrupt:name={name}:severity=4")
    kw = dict(labels=None, boxes=torch.full((3, 2, 4), float("nan")), model=None)
    out = cond.perturbation.perturb(images, generator=torch.Generator().manual_seed(0),
                                    **kw, **cond.params)
    again = cond.perturbation.perturb(images, generator=torch.Generator().manual_seed(0),
                                      **kw, **cond.params)
    assert out.shape == images.shape and out.dtype == torch.float32
    assert out.min() >= 0 and out.max() <= 1 and torch.equal(out, again)
    assert not torch.equal(out, images)


# ---------------------------------------------------------------- the M-TLAT extras

def test_rotation_by_90_degrees_is_rot90_and_outside_is_zero():
    image = np.random.default_rng(0).random((3, 40, 40)).astype(np.float32)
    np.testing.assert_array_equal(rotate_array(image, 90), np.rot90(image, 1, axes=(1, 2)))
    np.testing.assert_array_equal(rotate_array(image, -90), np.rot90(image, -1, axes=(1, 2)))
    np.testing.assert_array_equal(rotate_array(image, 180), np.rot90(image, 2, axes=(1, 2)))
    turned = rotate_array(np.ones((3, 41, 41), np.float32), 30)
    assert (turned[:, 0, 0] == 0).all() and (turned[:, -1, -1] == 0).all()  # corners left
    assert (turned[:, 20, 20] == 1).all()


def test_rotate_severities_and_random_sign():
    seen = {Rotate.degrees(s, seed) for s in range(1, 6) for seed in range(20)}
    assert seen == {sign * d for sign in (1, -1) for d in (8, 16, 24, 32, 40)}


def test_translation_is_a_shifted_array_with_zeros():
    image = np.random.default_rng(1).random((3, 20, 30)).astype(np.float32) + 0.01
    out = translate_array(image, dx=4, dy=-3)
    expected = np.zeros_like(image)
    expected[:, 0:17, 4:30] = image[:, 3:20, 0:26]
    np.testing.assert_array_equal(out, expected)
    assert not translate_array(image, dx=30, dy=0).any()


@pytest.mark.parametrize("size", [224, 64])
def test_translate_distance_scales_with_the_image(size):
    for severity, pixels in zip(range(1, 6), (15, 26.75, 38.5, 50.25, 62)):
        angles = set()
        for seed in range(8):
            dx, dy = Translate.shift(severity, seed, (size, size))
            assert abs(math.hypot(dx, dy) - pixels * size / 224) <= math.sqrt(0.5) + 1e-9
            angles.add((np.sign(dx), np.sign(dy)))
        assert len(angles) > 1  # the direction is random


@pytest.mark.parametrize("size", [224, 64])
def test_occluded_area_size_and_value(size):
    image = np.random.default_rng(2).random((3, size, size)).astype(np.float32) * 0.4
    corners = set()
    for severity, side in zip(range(1, 6), (60, 76.75, 93.5, 110.25, 127)):
        for seed in range(4):
            out = Occlude().perturb_image(image, NAN_BOXES, seed, severity=severity)
            mask = (out != image).all(0)
            rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
            expected = int(round(side * size / 224))
            assert mask.sum() == expected ** 2
            assert len(rows) == len(cols) == expected and (out[:, mask] == GREY).all()
            corners.add((rows[0], cols[0]))
    assert len(corners) > 5  # the position is random


def test_color_offset_on_exactly_one_channel():
    image = np.random.default_rng(3).random((3, 32, 32)).astype(np.float32)
    channels = set()
    for severity, fraction in zip(range(1, 6), (0.08, 0.135, 0.19, 0.245, 0.30)):
        for seed in range(12):
            out = ColorShift().perturb_image(image, NAN_BOXES, seed, severity=severity)
            changed = [c for c in range(3) if not np.array_equal(out[c], image[c])]
            assert len(changed) == 1
            c = changed[0]
            channels.add(c)
            np.testing.assert_allclose(out[c], np.minimum(image[c] + fraction, 1), atol=1e-7)
    assert channels == {0, 1, 2}


@pytest.mark.parametrize("name", ["corrupt", *EXTRAS])
def test_severity_zero_is_the_identity(name):
    params = dict(name="fog") if name == "corrupt" else {}
    image = from_uint8_hwc(_image(32))
    out = PERTURBATIONS.get(name)().perturb_image(image, NAN_BOXES, 0, severity=0, **params)
    np.testing.assert_array_equal(out, image)


# ---------------------------------------------------------------- regions

REGION_CASES = [("corrupt", dict(name=n)) for n in ("gaussian_noise", "zoom_blur", "fog",
                                                     "elastic_transform", "jpeg_compression")]
REGION_CASES += [(n, {}) for n in EXTRAS]


@pytest.mark.parametrize("name,params", REGION_CASES)
def test_regions_leave_the_other_part_bit_identical(name, params):
    image = from_uint8_hwc(_image(64, seed=4))
    boxes = np.array([[10.0, 12.0, 40.0, 50.0], [np.nan] * 4], dtype=np.float32)
    inside = np.zeros((64, 64), bool)
    inside[12:50, 10:40] = True
    perturbation = PERTURBATIONS.get(name)()
    run = {r: perturbation.perturb_image(image, boxes, 7, severity=4, region=r, **params)
           for r in ("object", "background", "all")}
    np.testing.assert_array_equal(run["object"][:, ~inside], image[:, ~inside])
    assert not np.array_equal(run["object"][:, inside], image[:, inside])
    np.testing.assert_array_equal(run["background"][:, inside], image[:, inside])
    np.testing.assert_array_equal(run["background"][:, ~inside], run["all"][:, ~inside])
    assert not np.array_equal(run["all"], image)


def test_object_region_needs_boxes_and_none_means_unchanged():
    image = from_uint8_hwc(_image(48))
    out = PERTURBATIONS.get("corrupt")().perturb_image(image, NAN_BOXES, 1, name="fog",
                                                      severity=3, region="object")
    np.testing.assert_array_equal(out, image)


# ---------------------------------------------------------------- parsing

def test_imagenet_c_expands_into_15_conditions():
    keys = [c.key for c in parse_conditions("corrupt:name=imagenet-c:severity=3")]
    assert keys == [f"corrupt:name={n}:severity=3:region=all" for n in IMAGENET_C]
    both = parse_conditions("corrupt:name=fog:severity=1:5:region=object,"
                            "corrupt:name=imagenet-c:severity=1:5:region=object")
    assert len(both) == 30 and both[0].key == "corrupt:name=fog:severity=1:region=object"
    assert condition_family(both[1].key) == ("corrupt:name=fog:region=object", "severity", 5.0)
    assert parse_condition("rotate:severity=2")[0].key == "rotate:severity=2:region=all"
    assert parse_condition("corrupt:name=fog:severity=3")[0].label == "corrupt:name=fog:severity=3"


@pytest.mark.parametrize("text,match", [
    ("corrupt:name=fogg:severity=3", "expected one of gaussian_noise.*imagenet-c"),
    ("corrupt:name=fog", "needs severity"),
    ("corrupt:name=fog:snow:severity=3", "name takes one value"),
    ("corrupt:severity=3", "needs name"),
    ("rotate:severity=6", "out of range"),
    ("occlude:severity=2:region=sky", "expected one of object, background, all"),
])
def test_malformed_corruptions_are_one_line_errors(text, match):
    with pytest.raises(FeatlabError, match=match) as err:
        parse_conditions(text)
    assert "\n" not in str(err.value)


# ---------------------------------------------------------------- seeding across processes

CONDITIONS = ("corrupt:name=gaussian_noise:severity=2,corrupt:name=glass_blur:severity=2,"
              "corrupt:name=frost:severity=2,"
              "rotate:severity=3:region=object,occlude:severity=1,translate:severity=5,"
              "color:severity=2:region=background")


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory):
    from featlab.data.synthetic import generate_synthetic

    root = tmp_path_factory.mktemp("synthetic")
    generate_synthetic(str(root), seed=5, n_images=20, image_size=32)
    return str(root)


def _spec(root, store="unused", **kw):
    options = dict(store=str(store), root=root, dataset="synthetic", device="cpu",
                   batch_size=4, chunk_size=6, image_size=32, seed=11)
    options.update(kw)
    return ExtractionSpec(**options)


def _worker_images(root, workers, item_bytes=2 ** 30):
    spec = _spec(root)
    dataset = load_dataset(spec)
    conditions = parse_conditions(CONDITIONS)
    n = len(dataset.samples)
    chunks = [(a, min(a + spec.chunk_size, n)) for a in range(0, n, spec.chunk_size)]
    plan = PerImagePlan(conditions, {c.key: chunks for c in conditions},
                        dataset.samples.image_id, spec.seed, 32, item_bytes=item_bytes)
    out = {c.key: [None] * len(chunks) for c in conditions}
    items = 0
    for start, stop, images, boxes, reasons, cpu in iter_chunks(dataset, chunks, workers, plan):
        items += 1
        assert images.numel() == (images.shape[0] * 3 * 32 * 32 if cpu.first else 0)
        for key in cpu.images:
            out[key][chunks.index((start, stop))] = cpu.float_images(key).numpy()
    return {k: np.concatenate(v) for k, v in out.items()}, items, dataset


def test_same_bytes_with_workers_0_and_2_split_items_and_the_python_api(synthetic_root):
    serial, items, dataset = _worker_images(synthetic_root, workers=0)
    parallel, _, _ = _worker_images(synthetic_root, workers=2)
    split, split_items, _ = _worker_images(synthetic_root, workers=0, item_bytes=3 * 32 * 32 * 6)
    assert split_items > items == 4
    images, boxes = zip(*(dataset.load(i) for i in range(len(dataset))))
    images, boxes = torch.from_numpy(np.stack(images)), torch.from_numpy(np.stack(boxes))
    for cond in parse_conditions(CONDITIONS):
        for other in (parallel, split):
            assert serial[cond.key].tobytes() == other[cond.key].tobytes(), cond.key
        api = cond.perturbation.perturb(images, boxes=boxes, image_ids=dataset.samples.image_id,
                                        run_seed=11, **cond.params)
        assert api.numpy().tobytes() == serial[cond.key].tobytes(), cond.key
        assert not np.array_equal(serial[cond.key], images.numpy()), cond.key


def test_different_images_get_different_noise_and_the_seed_is_the_run_seed():
    (cond,) = parse_condition("corrupt:name=gaussian_noise:severity=3")
    image = torch.full((1, 3, 40, 40), 0.5)
    twice = torch.cat([image, image])
    noise = cond.perturbation.perturb(twice, image_ids=[3, 4], run_seed=0, **cond.params)
    assert not torch.equal(noise[0], noise[1])
    same = cond.perturbation.perturb(twice, image_ids=[3, 3], run_seed=0, **cond.params)
    assert torch.equal(same[0], same[1]) and torch.equal(same[0], noise[0])
    other_run = cond.perturbation.perturb(image, image_ids=[3], run_seed=1, **cond.params)
    assert not torch.equal(other_run[0], noise[0])


def test_extract_stores_the_same_features_with_0_and_2_workers(synthetic_root, tiny_weights,
                                                               tmp_path):
    conditions = "clean,corrupt:name=motion_blur:severity=4,occlude:severity=3"
    stores = {}
    for workers in (0, 2):
        path = tmp_path / f"w{workers}"
        extract(_spec(synthetic_root, path, conditions=conditions, workers=workers,
                      weights=tiny_weights, chunk_size=10, batch_size=10))
        stores[workers] = FeatureStore(str(path))
    keys = [c.key for c in parse_conditions(conditions)]
    assert sorted(stores[0].conditions) == sorted(keys)
    clean = stores[0].read(backbone="synthetic-scene", layer="penultimate", condition="clean")
    for key in keys:
        for backbone in ("synthetic-object", "synthetic-scene"):
            a, b = (s.read(backbone=backbone, layer="layer2.0.bn1", condition=key)
                    for s in stores.values())
            assert a.tobytes() == b.tobytes(), (key, backbone)
        if key != "clean":
            assert not np.allclose(clean, stores[0].read(
                backbone="synthetic-scene", layer="penultimate", condition=key))

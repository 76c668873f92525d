"""Contract tests generated from the perturbation registry, plus blur and condition parsing."""
import numpy as np
import pytest
import scipy.ndimage as ndi
import torch

from featlab.errors import FeatlabError
from featlab.conditions import parse_condition, parse_conditions
from featlab.params import ConditionType
from featlab.perturbations import PERTURBATIONS
from featlab.probes import PROBES
from featlab.perturbations.blur import gaussian_blur

# a condition string and its zero-strength twin for every registered perturbation;
# a new registry entry without an example fails test_every_entry_has_an_example
EXAMPLES = {
    "clean": ("clean", "clean"),
    "blur": ("blur:sigma=3", "blur:sigma=0"),
    "fgsm": ("fgsm:eps=0.05", "fgsm:eps=0"),
    "bim": ("bim:eps=0.05:steps=3", "bim:eps=0:steps=3"),
    "pgd": ("pgd:eps=0.05:steps=3", "pgd:eps=0:steps=3"),
    "mifgsm": ("mifgsm:eps=0.05:steps=3", "mifgsm:eps=0:steps=3"),
    "pgdll": ("pgdll:eps=0.05:steps=3", "pgdll:eps=0:steps=3"),
    "tfgsm": ("tfgsm:eps=0.05", "tfgsm:eps=0"),
    "cw": ("cw:steps=5", None),
    # AutoAttack's components (equality with torchattacks: attacks/test_autoattack.py)
    "apgdce": ("apgdce:eps=0.05:steps=3", "apgdce:eps=0:steps=3"),
    "apgdt": ("apgdt:eps=0.05:steps=3:n_target_classes=2", "apgdt:eps=0:steps=3:n_target_classes=2"),
    "fab": ("fab:eps=0.05:steps=3:n_target_classes=2", "fab:eps=0:steps=3:n_target_classes=2"),
    "square": ("square:eps=0.05:n_queries=20", "square:eps=0:n_queries=20"),
    "autoattack": ("autoattack:eps=0.05:steps=3:n_queries=20:n_target_classes=2",
                   "autoattack:eps=0:steps=3:n_queries=20:n_target_classes=2"),
    # per-image CPU corruptions (every ImageNet-C name: test_corruptions.py)
    "corrupt": ("corrupt:name=fog:severity=3:region=object", "corrupt:name=fog:severity=0"),
    "rotate": ("rotate:severity=3", "rotate:severity=0"),
    "translate": ("translate:severity=3:region=background", "translate:severity=0"),
    "color": ("color:severity=3", "color:severity=0"),
    "occlude": ("occlude:severity=3:region=object", "occlude:severity=0"),
    # probe kinds feed many copies per image; their contract is in
    # tests/analyses/local/test_local_store.py
    "isotropy": ("isotropy:radius=1", None),
    "symmetry": ("symmetry:radius=1", None),
}
IMAGE_KINDS = PERTURBATIONS.names()


class TinyClassifier(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
                                       torch.nn.AdaptiveAvgPool2d(2), torch.nn.Flatten(),
                                       torch.nn.Linear(16, 5))
        self.register_buffer("input_std", torch.tensor([0.25, 0.25, 0.25]))

    def forward(self, x):
        return self.net((x - 0.5) / 0.25)


def _run(text, images, seed=0):
    (cond,) = parse_condition(text)
    boxes = torch.tensor([[[2.0, 3.0, 12.0, 14.0], [np.nan] * 4]] * len(images))
    labels = torch.arange(len(images)) % 5
    return cond.perturbation.perturb(images, labels=labels, boxes=boxes, model=TinyClassifier(),
                                     generator=torch.Generator().manual_seed(seed), **cond.params)


def test_every_entry_has_an_example():
    assert set(PERTURBATIONS.names()) <= set(EXAMPLES)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_condition_class_declares_the_contract(name):
    """Parsing and extraction call the contract's names directly on every registered class;
    the defaults leave a parsed condition as it was."""
    cls = (PROBES if name in PROBES else PERTURBATIONS).get(name)
    assert issubclass(cls, ConditionType) and cls.name == name
    (cond,) = parse_condition(EXAMPLES[name][0])
    assert cls.validate_params(dict(cond.params)) == cond.params
    assert cls.expand_values({k: [v] for k, v in cond.params.items()}) == {
        k: [v] for k, v in cond.params.items()}
    assert isinstance(cls.class_record(cond.params, 10), dict)
    assert cls.check_classes(cond.key, cond.params, 10) is None
    assert isinstance(cls.per_image, bool) and isinstance(cls.needs_model, bool)


def test_contract_overrides_take_effect():
    assert len(parse_condition("corrupt:name=imagenet-c:severity=1")) == 15  # expand_values
    assert PERTURBATIONS.get("corrupt").per_image and not PERTURBATIONS.get("blur").per_image
    assert PERTURBATIONS.get("apgdt").class_record({"n_target_classes": 9}, 5) == {
        "target_classes": 4}
    assert PERTURBATIONS.get("blur").class_record({"sigma": 1.0}, 5) == {}
    with pytest.raises(FeatlabError, match="at most 4 target classes"):
        PERTURBATIONS.get("apgdt").check_classes("apgdt:...", {"n_target_classes": 7}, 5)
    with pytest.raises(FeatlabError, match="at least"):  # the probe sets' validate_params
        parse_condition("isotropy:radius=1:copies=2")


@pytest.mark.parametrize("name", IMAGE_KINDS)
def test_contract(name):
    images = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    text, identity = EXAMPLES[name]
    out = _run(text, images.clone())
    assert out.shape == images.shape and out.dtype == images.dtype
    assert out.min() >= 0 and out.max() <= 1
    again = _run(text, images.clone())
    assert torch.equal(out, again), "same seed must give the same bytes"
    if identity is not None:
        torch.testing.assert_close(_run(identity, images.clone()), images, rtol=0, atol=1e-7)


@pytest.mark.parametrize("sigma", [0.7, 3.0, 45.0, 300.0])
def test_blur_matches_scipy_for_any_sigma(sigma):
    rng = np.random.default_rng(0)
    image = rng.random((3, 224, 180))
    ours = gaussian_blur(torch.from_numpy(image), sigma).numpy()
    ref = ndi.gaussian_filter(image, (0, sigma, sigma), mode="reflect", truncate=4.0)
    np.testing.assert_allclose(ours, ref, atol=1e-6)


def test_blur_regions():
    rng = np.random.default_rng(0)
    images = torch.from_numpy(rng.random((1, 3, 32, 32)).astype(np.float32))
    box = [4.0, 6.0, 20.0, 26.0]  # x0, y0, x1, y1 -> rows 6:26, cols 4:20
    boxes = torch.tensor([[box, [np.nan] * 4]])
    blur = PERTURBATIONS.get("blur")()
    kw = dict(labels=None, boxes=boxes, model=None, generator=None, sigma=5.0)
    inside = blur.perturb(images, region="object", **kw)
    mask = torch.zeros(32, 32, dtype=bool)
    mask[6:26, 4:20] = True
    assert torch.equal(inside[..., ~mask], images[..., ~mask])
    crop = ndi.gaussian_filter(images[0, :, 6:26, 4:20].numpy().astype(np.float64), (0, 5, 5),
                               mode="reflect")
    np.testing.assert_allclose(inside[0, :, 6:26, 4:20].numpy(), crop, atol=1e-5)
    outside = blur.perturb(images, region="background", **kw)
    assert torch.equal(outside[..., mask], images[..., mask])
    assert not torch.allclose(outside[..., ~mask], images[..., ~mask])
    everywhere = blur.perturb(images, region="all", **kw)
    np.testing.assert_allclose(everywhere[0].numpy(), ndi.gaussian_filter(
        images[0].numpy().astype(np.float64), (0, 5, 5), mode="reflect"), atol=1e-5)


def test_condition_parsing_and_canonical_keys():
    conds = parse_conditions("clean,blur:sigma=1:5:10:region=all,blur:sigma=5")
    assert [c.key for c in conds] == ["clean", "blur:sigma=1:region=all", "blur:sigma=5:region=all",
                                      "blur:sigma=10:region=all", "blur:sigma=5:region=object"]
    assert conds[-1].label == "blur:sigma=5"
    assert parse_condition("blur:region=object:sigma=5.0")[0].key == "blur:sigma=5:region=object"


@pytest.mark.parametrize("text,match", [
    ("nosuch", "unknown perturbation 'nosuch'; known: .*blur"),
    ("blur", "needs sigma"),
    ("blur:sigma=abc", "not a valid float"),
    ("blur:sigma=-1", "out of range"),
    ("blur:sigma=5:region=sky", "expected one of object, background, all"),
    ("blur:sigma=5:size=3", "unknown parameter 'size'"),
    ("blur:5", "expected 'param=value'"),
    ("blur:sigma=1:region=all:object", "region takes one value"),
    (":sigma=1", "no perturbation name"),
])
def test_malformed_conditions_are_one_line_errors(text, match):
    with pytest.raises(FeatlabError, match=match) as err:
        parse_conditions(text)
    assert "\n" not in str(err.value)

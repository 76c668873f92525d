"""Probe conditions for the local-property analyses (Aghdam, Heravi & Puig, VISAPP 2017).

``isotropy:radius=1:5:10`` and ``symmetry:radius=1:5:10`` do not perturb each image once;
for a seeded selection of test images the classifier gets right with high confidence,
they feed ``copies`` perturbed copies of the image at each radius to every backbone
(:class:`featlab.extraction.probing.ProbeRunner` does the work):

* ``isotropy`` — equation 4: ``copies`` directions ``v ~ U(-1, 1)^D`` rescaled to L2 norm
  ``radius``: the copies lie **on the sphere** of that radius around the image, not in the
  ball;
* ``symmetry`` — equation 6: one such vector of norm ``radius``, its elements re-ordered
  by ``copies`` random permutations (every copy has the same values, hence the same norm).

``radius`` is in 0-255 pixel units (the paper's ``eps, 1, ..., 20`` "pixels"); images are
in [0, 1], so the perturbation's L2 norm over all ``C*H*W`` elements is ``radius / 255``.
Copies are fed unclipped (clipping would change the norm). Each image has its own seed
(from the run seed and its image id), so every backbone sees the same copies and a radius
does not depend on which other radii were asked for.

Parameters
----------
radius : float > 0, several values allowed — one stored condition per radius
copies : int >= 3 — perturbed copies per image and radius (the paper's T = 100)
samples : int >= 1 — images probed (the paper's 300)
threshold : float in [0, 1] — minimum true-class probability of the selecting head on the
    clean image (the paper's 0.99; any threshold >= 0.5 implies a correct prediction)
select : fg | bg | joint — the fitted head that selects the images: ``fg-all``, ``bg-all``
    or ``joint-all-alpha=0`` (``featlab fit-head``)
norm : l2 | linf — what ``radius`` measures. The paper gives radii in "pixels" and does not
    say whether they are an L2 norm over all values (``l2``, the default, featlab's reading)
    or a per-pixel bound (``linf``: every element of ``v`` rescaled so that
    ``max |v_j| = radius / 255``, i.e. the L2 norm is then up to ``sqrt(C*H*W)`` times
    larger). Left out of the condition key when ``l2``. The stored ``norms`` and
    ``input_pdist`` are L2 distances under both (equation 9 and the Mantel test use them).
"""
from __future__ import annotations

from ..errors import FeatlabError
from ..params import ConditionType, Param
from ..utils.validation import MIN_COPIES
from .registry import PROBES
from .sets import isotropy_perturbations, symmetry_perturbations

SELECT = ("fg", "bg", "joint")
NORMS = ("l2", "linf")


class Probe(ConditionType):
    """Base of the probe sets: :meth:`probe_set` gives one image's copies.

    Declares the :class:`~featlab.params.ConditionType` contract: the parameters below and
    :meth:`validate_params`; the other names keep their defaults (no boxes, no model).
    """

    params = (
        Param("radius", float, required=True, low=0.0, high=1e6, multi=True,
              help="L2 norm of the perturbation in 0-255 pixel units (over all C*H*W values)"),
        Param("copies", int, default=16, help="perturbed copies per image and radius (T)"),
        Param("samples", int, default=24, low=1, high=10 ** 7, help="images probed"),
        Param("threshold", float, default=0.99, low=0.0, high=1.0,
              help="minimum clean true-class probability of the selecting head"),
        Param("select", str, default="fg", choices=SELECT,
              help="head that selects the images: fg-all, bg-all or joint-all-alpha=0"),
        Param("norm", str, default="l2", choices=NORMS, keyed_default=False,
              help="the norm the radius is measured in: l2 over all C*H*W values, or linf "
                   "(per pixel); the paper does not say which"),
    )

    @classmethod
    def validate_params(cls, params: dict) -> dict:
        """Refuse fewer than ``MIN_COPIES`` copies and a radius that is not > 0."""
        if params["copies"] < MIN_COPIES:
            raise FeatlabError(f"copies={params['copies']}: at least {MIN_COPIES} perturbed "
                               f"copies per image are needed (score range, Mantel test); the "
                               f"paper uses copies=100")
        if params["radius"] <= 0:
            raise FeatlabError(f"radius={params['radius']:g}: the radius must be > 0 (0-255 "
                               f"pixel units), e.g. radius=0.1:1:5:10")
        return params

    def probe_set(self, shape, *, radius: float, copies: int, seed: int, norm: str = "l2"):
        """The perturbations of one image at one radius.

        Parameters
        ----------
        shape : tuple (C, H, W)
        radius : float — 0-255 pixel units
        copies : int
        seed : int — the image's seed (:func:`featlab.probes.sets.sample_seed`)
        norm : ``l2`` or ``linf`` — the norm ``radius`` is measured in

        Returns
        -------
        Tensor of shape (copies, C, H, W), float32, each of ``norm`` ``radius / 255``
        """
        raise NotImplementedError


@PROBES.register("isotropy")
class Isotropy(Probe):
    """Equation 4: ``copies`` uniform random directions at each radius, on the sphere."""

    name = "isotropy"

    def probe_set(self, shape, *, radius, copies, seed, norm="l2"):
        return isotropy_perturbations(shape, [radius], copies, seed, norm=norm)[0]


@PROBES.register("symmetry")
class Symmetry(Probe):
    """Equation 6: ``copies`` random permutations of one perturbation of norm ``radius``."""

    name = "symmetry"

    def probe_set(self, shape, *, radius, copies, seed, norm="l2"):
        return symmetry_perturbations(shape, copies, seed, radius, norm=norm)

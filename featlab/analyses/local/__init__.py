"""Local properties of classifiers around a sample (Aghdam, Heravi & Puig, VISAPP 2017).

Pure array/tensor math; the store, extraction and CLI wire it up.

* :mod:`.isotropy` — score range / mean / misclassified per radius (Figures 1 and 3);
* :mod:`.mantel` — Mantel test of input vs feature distance matrices (Section 2.3,
  Figure 4), identical to scikit-bio's, batched;
* :mod:`.lipschitz` — local Lipschitz ratios with min-max normalizers (eq. 9, Figure 6)
  and a gradient-norm estimate;
* :mod:`.clever` — CLEVER scores compatible with ART's ``clever_u``;
* :mod:`.family` — probe conditions read back from a store (one family per kind and
  parameters, one condition per radius);
* :mod:`.run` — the ``isotropy``, ``symmetry``, ``mantel`` and ``lipschitz`` analyses;
* :mod:`.bounds` — gradient-norm and CLEVER estimates for ``lipschitz --bounds``;
* :mod:`.plots` — the figures.

The probe sets themselves (equations 4 and 6) are :mod:`featlab.probes`.
"""
from .clever import clever_t, clever_u
from .isotropy import (isotropy_rows, misclassified_from_logits, range_by_radius, score_range,
                       summarize)
from .lipschitz import (LipschitzResult, MinMaxNormalizer, fraction_below_one,
                        gradient_lipschitz, local_lipschitz, polynomial_fits)
from .mantel import mantel_batch, mantel_test, permutation_orders

__all__ = [
    "score_range", "summarize", "isotropy_rows", "range_by_radius", "misclassified_from_logits",
    "mantel_test", "mantel_batch", "permutation_orders",
    "MinMaxNormalizer", "LipschitzResult", "local_lipschitz", "fraction_below_one",
    "polynomial_fits", "gradient_lipschitz",
    "clever_t", "clever_u",
]

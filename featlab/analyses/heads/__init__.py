"""``fit-head``: linear heads on cached features (fusion paper Sections 2.1, 3.2-3.4).

* :mod:`.solver` — deterministic L-BFGS on the penalized softmax objective;
* :mod:`.linear` — :class:`LinearHead`, the scikit-learn-style estimator;
* :mod:`.fusion` — the foreground, background and joint heads, evaluation, weights;
* :mod:`.run` — :func:`fit_head`, the command's function (store in, results out);
* :mod:`.plots`, :mod:`.figures` — Figures 3-5.
"""
from .fusion import evaluate, fit_fusion_heads, mean_abs_weights
from .linear import LinearHead, fit_alpha_sweep

__all__ = ["LinearHead", "fit_alpha_sweep", "fit_fusion_heads", "evaluate", "mean_abs_weights"]

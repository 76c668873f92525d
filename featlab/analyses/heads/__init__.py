"""``fit-head``: scoring, sweeps and figures of the heads (fusion paper Sections 2.1, 3.2-3.4).

The heads themselves (linear, mlp, gated; the registry ``HEADS``) are :mod:`featlab.heads`.

* :mod:`.fusion` — the foreground, background and joint heads, evaluation, weights;
* :mod:`.inputs_fit` — heads of any type on any list of inputs with a penalty each;
* :mod:`.run` — :func:`fit_head`, the command's function (store in, results out);
* :mod:`.plots`, :mod:`.figures` — Figures 3-5;
* robust heads: :mod:`.robust` (adversarial retraining, mixed / parallel MAT as weighted
  multi-set objectives, the registry ``HEAD_RECIPES``; the strength selection and voting
  are :mod:`featlab.mat`), :mod:`.robust_data` (train-split features, validation carved
  from train), :mod:`.robust_run` (the ``--train-on`` / ``--recipe`` / ``--strengths`` part
  of fit-head), :mod:`.scoring` (rows, MAT Table 1), :mod:`.robust_plots`,
  :mod:`.robust_figures`.
"""
from .fusion import evaluate, fit_fusion_heads, mean_abs_weights
from ...heads.linear import LinearHead, fit_alpha_sweep
from .robust import HEAD_RECIPES, VotedHeads, fit_multiset

__all__ = ["LinearHead", "fit_alpha_sweep", "fit_fusion_heads", "evaluate", "mean_abs_weights",
           "fit_multiset", "HEAD_RECIPES", "VotedHeads"]

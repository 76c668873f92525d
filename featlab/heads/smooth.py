"""Full-batch L-BFGS for heads whose objective torch differentiates (``mlp``, ``gated``).

scipy's L-BFGS-B (Byrd, Lu, Nocedal & Zhu 1995) drives a flat float64 parameter vector; each
evaluation rebuilds the parameters as tensors in the features' dtype, evaluates the objective
and its gradient with torch autograd on the CPU, in one thread. Full batch, one thread and no
randomness in the loop: the same start and data give the same bytes on any machine's thread
settings (and on shared cores one thread is also the faster: a second one waits on the
first's hand-offs).
"""
from __future__ import annotations

import logging
import warnings

import numpy as np
import torch
from scipy.optimize import minimize
from sklearn.exceptions import ConvergenceWarning

log = logging.getLogger(__name__)


def lbfgs(objective, params: dict, *, dtype, max_iter: int, tol: float, what: str = "head"):
    """Minimise ``objective(tensors) -> scalar tensor`` from ``params`` (name -> ndarray).

    Parameters
    ----------
    objective : callable taking a dict name -> tensor (shapes of ``params``, ``dtype``)
    params : dict name -> ndarray, the starting point
    dtype : torch dtype of the evaluation (the features' dtype)
    max_iter : int, maximum L-BFGS iterations; tol : float, stop when the largest gradient
        entry is <= tol (scipy's ``gtol``)

    Returns
    -------
    (dict name -> float64 ndarray, n_iter, converged)
    """
    names = list(params)
    shapes = [np.shape(params[k]) for k in names]
    sizes = [int(np.prod(s)) for s in shapes]
    x0 = np.concatenate([np.asarray(params[k], np.float64).ravel() for k in names])

    def unpack(v):
        out, at = {}, 0
        for k, shape, size in zip(names, shapes, sizes):
            out[k] = v[at:at + size].reshape(shape)
            at += size
        return out

    def fun(v):
        tensors = {k: torch.tensor(a, dtype=dtype, requires_grad=True)
                   for k, a in unpack(v).items()}
        loss = objective(tensors)
        grads = torch.autograd.grad(loss, [tensors[k] for k in names])
        return float(loss.detach()), np.concatenate([g.detach().numpy().astype(np.float64).ravel()
                                            for g in grads])

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        res = minimize(fun, x0, jac=True, method="L-BFGS-B",
                       options=dict(maxiter=max_iter, gtol=tol, ftol=1e-12, maxcor=10))
    finally:
        torch.set_num_threads(threads)
    if res.nit >= max_iter:
        warnings.warn(f"{what} did not reach tol={tol} in {res.nit} iterations; increase "
                      f"max_iter", ConvergenceWarning, stacklevel=3)
    log.debug("%s: %d L-BFGS iterations (%s)", what, res.nit, res.message)
    return unpack(res.x.copy()), int(res.nit), bool(res.success)


def weighted_mean(values, w):
    """Mean of a tensor over samples, weighted by ``w`` (tensor summing to 1) when given."""
    return values.mean() if w is None else (values * w).sum()


def torch_weights(w, dtype):
    """Sample weights normalised to sum 1 as a tensor, or None."""
    return None if w is None else torch.as_tensor(w / w.sum(), dtype=dtype)

"""The random walk's options (MAT Section 4.3: ``l`` steps, ``t`` walks, penalty ``a``), their
defaults and their check, shared by ``featlab train`` and ``fit-head`` so that both refuse
the same values before anything is trained."""
from __future__ import annotations

from ..utils.validation import finite_number, positive_int

#: ``t``: walks per selection
DEFAULT_WALKS = 200
#: ``a`` in ``G = H + a * S``: an extra strength must raise the mean accuracy by 0.01
DEFAULT_PENALTY = -0.01


def check_walk_options(walk_steps, walks, walk_penalty):
    """``(l, t, a)`` checked: ``walk_steps`` an integer >= 1 or None (one step per candidate),
    ``walks`` an integer >= 1, ``walk_penalty`` finite; raises
    :class:`~featlab.errors.FeatlabError` naming the option otherwise."""
    steps = None if walk_steps is None else positive_int(
        walk_steps, "--walk-steps", hint=" (l, steps per random walk)")
    n_walks = positive_int(walks, "--walks", hint=" (t, number of random walks)")
    penalty = finite_number(walk_penalty, "--walk-penalty",
                            hint=" (a in G = H + a*S, e.g. -0.01)")
    return steps, n_walks, penalty

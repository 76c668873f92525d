"""``robustness``: the M-TLAT paper's Table 1 (clean accuracy, R per perturbation, +/-, mCE)
for every classifier of a store."""

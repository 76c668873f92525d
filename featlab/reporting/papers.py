"""What each paper reports, per figure and table the report reproduces (read from the papers
in ``shared/papers/``; each entry cites its figure, table or section there)."""
from __future__ import annotations

PAPERS = {
    "fusion": "Contextual Fusion for Adversarial Robustness (contextual-fusion.md)",
    "mat": "A Multi-strength Adversarial Training Method to Mitigate Adversarial Attacks "
           "(multi-strength-adversarial-training.md)",
    "mtlat": "Mixup-Targeted Labeling Adversarial Training, M-TLAT "
             "(mixup-targeted-labeling-adversarial-training.md)",
    "local": "Aghdam, Heravi & Puig: local properties of ConvNets "
             "(local-properties-of-convnets.md)",
    # not a paper: the report's section of a featlab replicate result (.replication)
    "replication": "Replication across seeds (featlab replicate)",
}

# section id -> (paper, label, title, what the paper reports)
CLAIMS = {
    "fusion-figure-2": (
        "fusion", "Figure 2", "Object blur in the clean PCA plane",
        "Figure 2 / Section 3.1: with a 2-D PCA fitted on raw images (Gaussian blur, σ = 5 on "
        "the object box), the entire cloud of foreground (object network) features moves, "
        "while the background (scene network) features remain within the statistical "
        "subspace created by the raw images."),
    "fusion-figure-3": (
        "fusion", "Figure 3", "Accuracy against object blur σ (All / Similar / Dissimilar)",
        "Figure 3a, c, d / Section 3.2: the joint classifier beats the foreground one at every "
        "σ, most for σ > 5; the gain holds on the Similar and the Dissimilar subsets and is "
        "largest on Dissimilar (+10 % at σ = 10; +5 % on Similar at σ = 10)."),
    "fusion-figure-4": (
        "fusion", "Figure 4", "Accuracy under FGSM on the foreground network; weights",
        "Figure 4a-b / Section 3.3: under FGSM on the foreground classifier its accuracy drops "
        "to chance as ε grows, the background one degrades much more slowly and the joint "
        "one lies in between, with the foreground's clean accuracy; the mean |weight| of the "
        "two networks in the joint head is almost equal on COCO (foreground-dominated on "
        "CIFAR-10, Figure 4d)."),
    "fusion-figure-5": (
        "fusion", "Figure 5", "The alpha sweep against adversarial retraining",
        "Figure 5 / Section 3.4: raising α (0.1 to 10) on the foreground weights moves the "
        "joint head toward the background head under attack while it keeps a high clean "
        "accuracy; at α = 10 the joint head outperforms adversarial retraining (ε = 0.3) at "
        "all ε; the foreground mean |weight| falls and the background one rises with α "
        "(Figure 5c-d)."),
    "mat-figure-4": (
        "mat", "Figure 4", "Accuracy against attack strength per training method",
        "Figure 4 / Section 5.2: single-strength adversarial training beats original training "
        "under attack but loses clean accuracy; parallel MAT generally gives the best accuracy "
        "over the strength range; mixed MAT is not consistently better than single strength."),
    "mat-table-1": (
        "mat", "Table 1", "Average accuracy over the strength range",
        "Table 1 / Section 5.3: average test accuracy over the strength range, original / "
        "single-strength / mixed MAT / parallel MAT: CIFAR-10 53.73 / 65.86 / 65.81 / 75.35 %, "
        "CIFAR-100 5.77 / 45.27 / 57.12 / 61.94 %, MNIST 82.13 / 96.50 / 95.76 / 97.36 %, "
        "SVHN 44.04 / 90.21 / 91.31 / 91.84 %."),
    "mat-random-walk": (
        "mat", "Section 4.3", "The random-walk strength selection: accuracy matrix A",
        "Section 4.3: the accuracy matrix A of single-strength training (validation accuracy, "
        "rows: training strength, columns: tested strength), row-normalised to A_M, drives "
        "l-step random walks repeated t times; G = H + a·S picks the strengths."),
    "mtlat-table-1": (
        "mtlat", "Table 1", "Robustness scores R = A/A_clean",
        "Table 1 / Section 5.2: R = A_φ / A_clean per perturbation (ImageNet-C: the mean over "
        "5 severities), '+'/'-' against the standard model; M-TLAT is more robust than standard "
        "training to every common corruption (e.g. ResNet-50 Gauss 0.17 → 0.56) and much more "
        "to CW-L2 (0.00 → 1.00) and PGD-LL (0.00 → 0.45), with clean accuracy 73.3 → 73.9 "
        "%."),
    "mtlat-table-2": (
        "mtlat", "Table 2", "Ablation: Mixup and TLAT alone",
        "Table 2 / Section 5.3: Mixup raises clean accuracy and robustness to most corruptions "
        "(not Motion Blur, Pixelate, Jpeg) with little effect on attacks; TLAT lowers clean "
        "accuracy but makes models much more robust to every adversarial attack."),
    "local-figure-1": (
        "local", "Figure 1", "Isotropy: score range over copies at one radius",
        "Figure 1 / Section 2.1: no ConvNet is perfectly isotropic even at distance ε, the score "
        "hardly changes there; at 1 pixel all become more non-isotropic and most are very "
        "non-isotropic at 10 pixels (log-scale score range per radius)."),
    "local-figure-3": (
        "local", "Figure 3", "Symmetry: score range over permuted copies",
        "Figure 3 / Section 2.2: except for adversarial examples closer than ε to x, none of "
        "the ConvNets is symmetric."),
    "local-figure-4": (
        "local", "Figure 4", "Mantel r between input and feature distances, per radius",
        "Figure 4 / Section 2.3: the topology of the points does not change linearly even very "
        "close to x: the Mantel score of every ConvNet is -0.1 < ρ < 0.1."),
    "local-figure-6": (
        "local", "Figure 6", "Local Lipschitz ratio against the input distance",
        "Figure 6 / Section 2.4, equation 9: with min-max normalisers g and h the ConvNets are "
        "in general locally contractive: L_x < 1 in most cases."),
}

ORDER = list(CLAIMS)

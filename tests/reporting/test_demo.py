"""``featlab demo`` end to end on a tiny spec (random-init backbones, 32 px, few images):
every claim row is produced with a verdict, summary.json is the report hook, the printed
table shows the verdicts, and the report renders every section of the four papers. What the
verdicts *are* is tested in test_demo_claims.py."""
import json
import os

import pytest

from featlab.cli.demo_cmd import echo_summary
from featlab.reporting.papers import CLAIMS
from featlab.reporting.demo import DemoSpec, demo
from featlab.errors import FeatlabError
from featlab.store import FeatureStore

FIELDS = {"claim", "section", "verdict", "effect", "low", "high", "margin", "test", "n",
          "by_construction", "decides"}


def _spec(tmp_path, weights, **kw):
    settings = dict(cache_dir=str(tmp_path / "cache"), analyses_dir=str(tmp_path / "analyses"),
                    n_images=96, image_size=32, sigmas=(1.0, 2.0), eps=(0.01, 0.03),
                    alphas=(0.0, 10.0), consistencies=(1.0, 0.0), dose_images=64, n_boot=200,
                    device="cpu", weights=weights, probe_radii=(1.0,), probe_copies=3,
                    probe_samples=4, probe_threshold=0.0, trained_recipes=("standard",),
                    train_epochs=1, train_image_size=32, trained_eps=(0.03,))
    return DemoSpec(**dict(settings, **kw))


@pytest.mark.slow
def test_tiny_demo_decides_every_claim(tmp_path, tiny_weights, capsys):
    summary = demo(_spec(tmp_path, tiny_weights))
    rows = summary["claims"]
    assert {r["id"] for r in rows} == {"1", "2", "3", "3b", "4", "5"}
    for r in rows:
        assert FIELDS <= set(r) and r["verdict"] in ("yes", "no", "inconclusive")
        assert r["by_construction"] == (r["id"] != "5")
    # claim 1: 3 subsets x 2 sigmas + 2 subset comparisons; claim 3: clean + 2 strengths
    assert sum(r["id"] == "1" for r in rows) == 8 and sum(r["id"] == "3" for r in rows) == 3
    on_disk = json.load(open(os.path.join(tmp_path, "analyses", "demo", "summary.json")))
    assert on_disk["claims"] == json.loads(json.dumps(rows, default=float))
    assert all(os.path.isdir(s) for s in on_disk["stores"])
    # the report renders all 13 sections, M-TLAT Table 2 from the trained network's logits
    assert summary["sections"] == {s: "rendered" for s in CLAIMS}
    assert len(on_disk["stores"]) == 4 and on_disk["alpha_scale"] == "sum"
    report = json.load(open(os.path.join(tmp_path, "analyses", "report", "report.json")))
    assert report["alpha_scale"] == "sum" and report["alphas"] == [0.0, 10.0]
    assert "demo-standard (logits)" in open(summary["report"]["html"], encoding="utf-8").read()
    explored = summary["exploration"]  # beside the claims, not among them
    assert on_disk["exploration"] == json.loads(json.dumps(explored, default=float))
    heads = {"mlp-joint-all-alpha=0", "gated-joint-all-alpha=0"}
    paired = [r for r in explored if r["versus"] == "joint-all-alpha=0"]
    assert {(r["head"], r["condition"].split()[0]) for r in paired} == {
        (h, c) for h in heads for c in ("blur", "fg-FGSM")}
    assert all(r["verdict"] in ("yes", "no", "inconclusive") and r["low"] <= r["effect"]
               <= r["high"] and r["n"] > 0 for r in paired)
    attacked = {r["head"]: r for r in explored if r["versus"] is None}
    assert set(attacked) == heads and all(
        r["condition"] == f"fgsm:eps=0.03:target=head:{h}" and r["verdict"] == "reported"
        and r["low"] <= r["effect"] <= r["high"] for h, r in attacked.items())
    assert not any(r["claim"].startswith(("mlp", "gated")) for r in rows)
    assert set(summary["phase_seconds"]) >= {"exploration: mlp and gated heads"}
    echo_summary(summary)
    out = capsys.readouterr().out
    assert "exploration (not a claim of the papers; not counted in the verdicts)" in out
    assert all(r["condition"] in out and r["head"] in out for r in explored)
    assert "by construction" in out and "verdict per claim" in out
    assert "±0.01" in out and "±0.02" in out and "±0.5" in out  # every claim's margin
    assert {r["margin"] for r in rows} == {0.01, 0.02, 0.5}
    assert "13/13 sections rendered" in out and "wall time per phase" in out
    assert "joint at alpha=10 on the paper's scale" in out
    for r in rows:
        assert r["claim"] in out


@pytest.mark.slow
def test_a_demo_without_report_skips_the_report_only_parts(tmp_path, tiny_weights, monkeypatch):
    from featlab.reporting import demo as demo_module

    def never(*a, **k):
        raise AssertionError("trained networks are for the report only")

    monkeypatch.setattr(demo_module, "trained_store", never)
    summary = demo(_spec(tmp_path, tiny_weights, report=False, consistencies=(1.0,)))
    assert {r["id"] for r in summary["claims"]} == {"1", "2", "3", "3b", "4", "5"}
    assert len(summary["stores"]) == 2 and "report" not in summary
    assert "exploration" not in summary
    conditions = os.listdir(os.path.join(summary["store"], "conditions"))
    assert conditions and not [c for c in conditions if "isotropy" in c or "symmetry" in c]
    assert not [k for k in FeatureStore(summary["store"]).conditions if "target=head:" in k]
    for path in summary["stores"]:  # what the claims read, no batch-norm layers
        assert {layer for meta in FeatureStore(path).backbone_meta.values()
                for layer in meta["layers"]} == {"penultimate"}


def test_demo_refuses_bad_settings_before_writing(tmp_path, tiny_weights):
    with pytest.raises(FeatlabError, match="alphas"):
        demo(_spec(tmp_path, tiny_weights, alphas=(1.0, 10.0)))
    with pytest.raises(FeatlabError, match="n-boot"):
        demo(_spec(tmp_path, tiny_weights, n_boot=5))
    with pytest.raises(FeatlabError, match="trained_recipes"):
        demo(_spec(tmp_path, tiny_weights, trained_recipes=("nope",)))
    with pytest.raises(FeatlabError, match="probe sets"):
        demo(_spec(tmp_path, tiny_weights, probe_copies=2))
    assert not os.path.exists(tmp_path / "cache") and not os.path.exists(tmp_path / "analyses")

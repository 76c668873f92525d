"""``featlab report``: sections from a tiny store, missing sections name their command, the
HTML page is self-contained and renders in headless Chromium, the PDF's pages are not blank."""
import html
import inspect
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from conftest import one_error_line, read_only_mount
from featlab.reporting.papers import CLAIMS
from featlab.reporting.report import report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PDFTOPPM = shutil.which("pdftoppm")
PROBES = ("isotropy:radius=1:8:copies=4:samples=3:threshold=0,"
          "symmetry:radius=1:8:copies=4:samples=3:threshold=0")
EXTRA = "blur:sigma=2,fgsm:eps=0.03:0.1:target=fg," + PROBES


def _extract(root, store, weights, conditions):
    from featlab.extraction import ExtractionSpec, extract

    extract(ExtractionSpec(store=str(store), root=root, dataset="synthetic",
                           conditions=conditions, device="cpu", batch_size=48, chunk_size=48,
                           image_size=32, weights=weights))


@pytest.fixture(scope="module")
def clean_store(tmp_path_factory, tiny_weights):
    """(folder, synthetic root, a store holding clean features only, no heads)."""
    from featlab.data.synthetic import generate_synthetic

    base = tmp_path_factory.mktemp("report")
    root = str(base / "data")
    generate_synthetic(root, seed=3, n_images=48, image_size=32, n_supercategories=2,
                       classes_per_supercategory=2)
    _extract(root, base / "clean", tiny_weights, "clean")
    return base, root, str(base / "clean")


@pytest.fixture(scope="module")
def full_report(clean_store, tiny_weights):
    """The report of a store with blur, FGSM and probe conditions beside the clean one."""
    from featlab.analyses.heads.run import fit_head
    from featlab.store import FeatureStore

    base, root, clean = clean_store
    full = base / "full"
    shutil.copytree(clean, full)
    fit_head(FeatureStore(str(full)), alphas=(0.0,))
    _extract(root, full, tiny_weights, EXTRA)
    heads_before = sorted(os.listdir(full / "heads"))
    result = report([str(full), clean], str(base / "out"), alphas=(0.0, 10.0), n_boot=200)
    assert sorted(os.listdir(full / "heads")) == heads_before  # the report only reads
    return result


def _sections(result):
    return {s["id"]: s for s in result["sections"]}


@pytest.fixture(scope="module")
def trained_store(clean_store, tiny_weights):
    """A store whose object network ``net`` is a ResNet-10 ``featlab train`` made (1 epoch),
    beside the scene backbone, with heads fitted on it and FGSM crafted on its own logits."""
    from featlab.analyses.heads.run import fit_head
    from featlab.extraction import ExtractionSpec, extract
    from featlab.store import FeatureStore
    from featlab.training import TrainSpec, train

    base, root, _ = clean_store
    weights = str(base / "net.pt")
    train(TrainSpec(out=weights, root=root, arch="resnet10-w16", recipe="tlat", epochs=1,
                    image_size=32, batch_size=16, device="cpu"))
    path = str(base / "trained")

    def run(conditions):
        extract(ExtractionSpec(store=path, root=root, dataset="synthetic", conditions=conditions,
                               backbones=(f"net={weights}", "synthetic-scene"), device="cpu",
                               batch_size=48, chunk_size=48, image_size=32, weights=tiny_weights))

    run("clean")
    fit_head(FeatureStore(path), alphas=(0.0,))
    run("fgsm:eps=0.03:target=fg")
    return FeatureStore(path)


@pytest.mark.slow  # trains a small network and extracts a store with it: ~30 s
def test_mtlat_table2_shows_the_trained_network_itself(trained_store, tmp_path):
    from featlab.reporting.context import Context
    from featlab.reporting.robust import mtlat_table2

    store = trained_store
    key = store.resolve_condition("fgsm:eps=0.03:target=fg")
    assert store.condition_info(key)["head"] == "own-logits"  # crafted on the network
    ctx = Context([store], str(tmp_path), alphas=(0.0,), n_boot=100, seed=0)
    (item,) = mtlat_table2(ctx, store)
    assert item["columns"][:3] == ["recipe", "network", "clean"]
    (row,) = item["rows"]
    labels = store.labels(split="test")
    own = {c: store.read(backbone="net", layer="logits", condition=c, split="test").argmax(1)
           == labels for c in ("clean", key)}
    assert row[:3] == ["tlat", "net (logits)", f"{own['clean'].mean():.3f}"]
    assert row[3] == f"{own[key].mean() / own['clean'].mean():.2f}"
    assert "on net" in item["caption"]  # white-box for the network


def test_bare_store_names_the_command_of_every_section(clean_store, tmp_path):
    _, _, clean = clean_store
    result = report(clean, str(tmp_path / "out"), n_boot=100)
    sections = _sections(result)
    assert list(sections) == list(CLAIMS)
    page = open(result["html"], encoding="utf-8").read()
    for sid, s in sections.items():
        assert s["status"] == "missing" and not s["figures"], sid
        (gap,) = s["missing"]
        assert gap["command"].startswith("featlab "), (sid, gap)
        assert gap["command"].split()[1] in ("extract", "fit-head", "train"), (sid, gap)
        assert f"id=\"{sid}\"" in page
    assert sections["fusion-figure-3"]["missing"][0]["command"].startswith(
        f"featlab extract --store {clean} ")
    assert "blur:sigma=" in sections["fusion-figure-3"]["missing"][0]["command"]
    assert "featlab fit-head --store" in sections["mtlat-table-1"]["missing"][0]["command"]
    assert page.count("class=\"missing\"") == len(CLAIMS) and "<img" not in page
    assert os.path.getsize(result["pdf"]) > 0
    assert json.load(open(result["json"]))["sections"][0]["status"] == "missing"
    again = report(clean, str(tmp_path / "again"), n_boot=100)  # same seed, same bytes
    for key in ("html", "pdf"):
        assert open(again[key], "rb").read() == open(result[key], "rb").read(), key


@pytest.mark.slow  # builds a store with attacks and probes, then the report: ~1 min
def test_sections_render_from_the_store_they_need(full_report):
    sections = _sections(full_report)
    missing = {sid for sid, s in sections.items() if s["status"] == "missing"}
    assert missing == {"mtlat-table-2"}  # no network trained with mixup/tlat in the store
    assert "featlab train --recipe mixup" in sections["mtlat-table-2"]["missing"][0]["command"]
    for sid, s in sections.items():
        if sid not in missing:
            assert s["figures"] and all(os.path.getsize(p) > 0 for p in s["figures"]), sid
            # the clean-only store supports none of them and says what to run for it
            assert [g["store"] for g in s["missing"]] == ["clean"], sid
    page = open(full_report["html"], encoding="utf-8").read()
    n_figures = sum(len(s["figures"]) for s in full_report["sections"])
    sources = re.findall(r"<img src=\"([^\"]*)\"", page)
    assert len(sources) == n_figures >= 12
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    assert not re.search(r"(src|href)=\"(https?:|//|file:)", page)
    assert "<script" not in page and "<link" not in page and "@import" not in page
    for sid, (_, label, _, reports) in CLAIMS.items():  # the paper's words, then featlab's
        assert reports.split(":")[0] in page and label in page, sid
    assert "featlab measured (full)" in page and "[" in page  # measured with intervals
    assert "all 4 classes" in page


@pytest.mark.slow  # builds a store with attacks and probes, then the report: ~1 min
def test_pca_legend_and_intervals_in_captions(full_report):
    sections = _sections(full_report)
    result = json.load(open(full_report["json"]))
    assert result["alphas"] == [0.0, 10.0]
    page = open(full_report["html"], encoding="utf-8").read()
    caption = re.search(r"object network \(synthetic-object\): class centroids moved "
                        r"([0-9.]+) \[([0-9.]+), ([0-9.]+)\]", page)
    assert caption, "Figure 2 caption without its interval"
    value, low, high = map(float, caption.groups())
    assert low <= value <= high
    assert sections["mat-random-walk"]["status"] == "rendered"


@pytest.mark.slow  # builds a store with attacks and probes, then the report: ~1 min
def test_captions_give_alpha_scale_and_weights_in_both_spaces(full_report):
    page = html.unescape(open(full_report["html"], encoding="utf-8").read())
    assert json.load(open(full_report["json"]))["alpha_scale"] == "sum"
    assert "joint heads at α = 0, 10 (the paper's scale" in page
    weights = re.search(r"on standardized features \(per feature SD\) foreground [0-9.]+, "
                        r"background [0-9.]+ \(fg/bg ([0-9.]+)\); on raw features foreground "
                        r"[0-9.e-]+, background [0-9.e-]+ \(fg/bg ([0-9.]+)\)", page)
    assert weights, "Figure 4 caption without both weight spaces"


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install "
                    "chromium); the HTML page cannot be opened in a browser here")
def test_html_opens_in_headless_chromium(full_report, tmp_path):
    page = open(full_report["html"], encoding="utf-8").read()
    probe = ("<script>window.addEventListener('load',function(){var r=[];"
             "document.querySelectorAll('img').forEach(function(i){r.push([i.complete,"
             "i.naturalWidth,i.naturalHeight])});var p=document.createElement('pre');"
             "p.id='featlab-probe';p.textContent=JSON.stringify(r);"
             "document.body.appendChild(p)});</script>"
             # a broken image last: the probe must see it fail (naturalWidth 0)
             "<img id=\"featlab-broken\" src=\"data:image/png;base64,AAAA\"></body>")
    probed = tmp_path / "probed.html"
    probed.write_text(page.replace("</body>", probe), encoding="utf-8")
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--virtual-time-budget=10000"]
    dom = subprocess.run(flags + ["--dump-dom", probed.as_uri()], capture_output=True,
                         text=True, timeout=180).stdout
    found = re.search(r"<pre id=\"featlab-probe\">(.*?)</pre>", dom, re.S)
    assert found, dom[-2000:]
    images = json.loads(found.group(1).replace("&quot;", "\""))
    n_figures = sum(len(s["figures"]) for s in full_report["sections"])
    *images, broken = images
    assert len(images) == n_figures and broken[1] == 0
    assert all(done and w > 0 and h > 0 for done, w, h in images), images
    shot = tmp_path / "shot.png"
    subprocess.run(flags + ["--window-size=1200,2400", f"--screenshot={shot}",
                            Path(full_report["html"]).resolve().as_uri()],
                   capture_output=True, timeout=180)
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.std() > 10 and (pixels < 200).mean() > 0.02  # text and figures drawn


@pytest.mark.slow
@pytest.mark.skipif(PDFTOPPM is None, reason="pdftoppm is not installed (apt-get install "
                    "poppler-utils); the PDF pages cannot be rendered here")
def test_pdf_pages_are_not_blank(full_report, tmp_path):
    subprocess.run([PDFTOPPM, "-png", "-r", "30", full_report["pdf"], str(tmp_path / "page")],
                   check=True, timeout=180)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) >= 1 + len(CLAIMS)  # summary, then at least one page per section
    for page in pages:
        pixels = np.asarray(Image.open(page).convert("L"), dtype=float)
        assert pixels.std() > 0 and (pixels < 200).any(), page.name


def test_cli_writes_the_report_and_refuses_bad_input(clean_store, tmp_path):
    from featlab.cli.main import cli

    _, _, clean = clean_store
    out = tmp_path / "cli"
    res = CliRunner().invoke(cli, ["report", "--store", clean, "--out", str(out),
                                   "--n-boot", "100"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "0/13 sections rendered" in res.output and "featlab extract --store" in res.output
    assert (out / "report.html").is_file() and (out / "report.pdf").is_file()
    for args, message in ((["--store", str(tmp_path / "nope")], "no such store"),
                          (["--store", clean, "--n-boot", "0"], "--n-boot"),
                          (["--store", clean, "--n-boot", "50"], "at least 100 resamples"),
                          (["--store", clean, "--alpha", "-1"], "--alpha"),
                          (["--store", clean, "--alpha", "nan"], "--alpha=nan"),
                          (["--store", clean, "--alpha", "0", "--alpha", "inf"], "--alpha=inf")):
        bad = tmp_path / "bad"
        res = CliRunner().invoke(cli, ["report", *args, "--out", str(bad)])
        assert res.exit_code == 2, res.output
        assert res.output.startswith("featlab: error: ") and message in res.output
        assert res.output.count("\n") == 1 and not bad.exists()


def test_cli_flags_are_the_parameters_of_report():
    import click

    from featlab import report as api_report
    from featlab.cli.main import cli

    assert api_report is report
    cmd = cli.get_command(click.Context(cli), "report")
    params = set(inspect.signature(report).parameters)
    assert {p.name for p in cmd.params} <= params
    assert {p.name for p in cmd.params} == {"stores", "out_dir", "alphas", "n_boot", "seed",
                                            "replicate"}


def test_one_seaborn_style_for_every_figure():
    import matplotlib
    import seaborn as sns

    from featlab.reporting.style import report_style

    before = matplotlib.rcParams["axes.facecolor"], matplotlib.rcParams["axes.grid"]
    with report_style():
        assert matplotlib.rcParams["axes.grid"] is True
        assert matplotlib.rcParams["grid.color"] == sns.axes_style("whitegrid")["grid.color"]
    assert (matplotlib.rcParams["axes.facecolor"], matplotlib.rcParams["axes.grid"]) == before


def test_figure2_caption_carries_the_membership_test_when_pca_shift_has_it():
    from featlab.reporting.fusion import _membership

    assert _membership(None) == ""
    text = _membership(dict(k=10, ratio=1.1, ratio_low=1.02, ratio_high=1.2, tolerance=1.25,
                            stays_inside="yes"))
    assert "1.10 [1.02, 1.20]" in text and "tolerance 1.25: yes" in text


def test_pca_figure_gives_each_of_16_classes_its_own_colour():
    from matplotlib.colors import to_hex

    from featlab.analyses.shift.plots import plot_pca_shift

    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(16), 3)
    ax = plot_pca_shift(rng.normal(size=(48, 2)), rng.normal(size=(48, 2)), labels,
                        class_names=[f"c{i}" for i in range(16)])
    handles = ax.get_legend().legend_handles
    assert [h.get_label() for h in handles] == [f"c{i}" for i in range(16)]
    assert len({to_hex(h.get_facecolor()[0]) for h in handles}) == 16


class _Store:
    """What the report's retraining choice reads: conditions, completeness, backbones."""

    def __init__(self, conditions, std=(0.25, 0.25, 0.25)):
        from featlab.conditions import parse_condition

        self.conditions = ["clean"] + [c.key for c in parse_condition(conditions)]
        self.backbone_meta = {"obj": dict(role="object", normalization=[[0.5] * 3, list(std)]),
                              "scn": dict(role="scene", normalization=[[0.5] * 3, [0.5] * 3])}

    def condition_info(self, key):
        return dict(complete=True)


@pytest.mark.parametrize("conditions, chosen", [
    # pixel units: 0.3 normalized is 0.3 * 0.25 = 0.075 pixels for the object backbone
    ("fgsm:eps=0.01:0.075:0.3:target=fg", 0.075),
    # normalized units: the paper's 0.3 as stored
    ("fgsm:eps=0.01:0.075:0.3:eps_space=normalized:target=fg", 0.3),
    # an attack on the scene backbone reads its own std (0.5): 0.15 pixels
    ("fgsm:eps=0.075:0.15:0.3:target=bg", 0.15)])
def test_retraining_eps_is_the_papers_in_the_stored_units(conditions, chosen):
    from featlab.conditions import parse_condition
    from featlab.reporting.context import Context

    store = _Store(conditions)
    options = Context([], "out", alphas=(0,), n_boot=10, seed=0)._robust_options(store, "all")
    retrain = parse_condition(options["train_on"].split(",", 1)[1])[0].params["eps"]
    assert retrain == pytest.approx(chosen)


def _cli_report(*args):
    from featlab.cli.main import cli

    return CliRunner().invoke(cli, ["report", *map(str, args)])


def test_out_that_cannot_be_written_is_one_line(clean_store, tmp_path, monkeypatch):
    _, _, clean = clean_store
    a_file = tmp_path / "report.html"
    a_file.write_text("not a folder")
    for out, message in ((a_file, "is a file, not a folder"),
                         (a_file / "sub", "is a file, not a folder")):
        res = _cli_report("--store", clean, "--out", out)
        assert res.exit_code == 2 and message in one_error_line(res.output), res.output

    (tmp_path / "ro").mkdir()
    read_only_mount(monkeypatch, tmp_path / "ro")
    res = _cli_report("--store", clean, "--out", tmp_path / "ro" / "report")
    assert res.exit_code == 2, res.output
    line = one_error_line(res.output)
    assert "cannot write in" in line and "Read-only file system" in line and "--out" in line
    assert not (tmp_path / "ro" / "report").exists()


def test_store_given_twice_is_read_once(clean_store, tmp_path):
    _, _, clean = clean_store
    res = _cli_report("--store", clean, "--store", clean + os.sep, "--out", tmp_path / "out")
    assert res.exit_code == 0, res.output
    assert "reading it once" in res.output
    result = json.loads((tmp_path / "out" / "report.json").read_text())
    assert result["stores"] == [clean]
    assert all(len(s["missing"]) == 1 for s in result["sections"])


def _copy(clean_store, tmp_path):
    _, _, clean = clean_store
    copy = tmp_path / "copy"
    shutil.copytree(clean, copy)
    return copy


def _clean_part(store):
    return sorted((store / "conditions").glob("clean-*/part-*.h5"))[0]


def test_truncated_part_refuses_the_report(clean_store, tmp_path):
    store = _copy(clean_store, tmp_path)
    part = _clean_part(store)
    with open(part, "r+b") as raw:
        raw.truncate(os.path.getsize(part) // 2)
    res = _cli_report("--store", store, "--out", tmp_path / "out")
    assert res.exit_code == 2, res.output
    line = one_error_line(res.output)
    assert part.name in line and "truncated" in line and "featlab store verify" in line
    assert not (tmp_path / "out").exists()


def test_damaged_bytes_mark_sections_unreadable_and_fail(clean_store, tiny_weights, tmp_path):
    """A flipped byte only a read finds: the sections that read it say so, the report is
    written, and the command fails naming the part."""
    _, root, _ = clean_store
    store = _copy(clean_store, tmp_path)
    _extract(root, store, tiny_weights, "blur:sigma=2")
    part = _clean_part(store)
    with h5py.File(part, "r") as handle:  # one byte inside the stored features
        offset = handle["synthetic-object/penultimate"].id.get_offset() + 10
    with open(part, "r+b") as raw:
        raw.seek(offset)
        byte = raw.read(1)
        raw.seek(offset)
        raw.write(bytes([byte[0] ^ 0xFF]))
    res = _cli_report("--store", store, "--out", tmp_path / "out", "--alpha", "0")
    assert res.exit_code == 2, res.output
    line = one_error_line(res.output)
    assert part.name in line and "condition clean is damaged" in line
    assert "featlab store verify" in line and "report.html" in line
    result = json.loads((tmp_path / "out" / "report.json").read_text())
    status = {s["id"]: s["status"] for s in result["sections"]}
    assert status["fusion-figure-2"] == status["fusion-figure-3"] == "unreadable"
    assert "rendered" not in status.values()
    assert "Cannot read copy" in (tmp_path / "out" / "report.html").read_text()


def test_store_deleted_during_the_report_is_one_line(clean_store, tmp_path, monkeypatch):
    from featlab.reporting import report as module

    store = _copy(clean_store, tmp_path)
    build = module.BUILDERS["fusion-figure-4"]

    def delete_then_build(ctx, opened):
        shutil.rmtree(store)
        return build(ctx, opened)

    monkeypatch.setitem(module.BUILDERS, "fusion-figure-4", delete_then_build)
    res = _cli_report("--store", store, "--out", tmp_path / "out")
    assert res.exit_code == 2, res.output
    assert "disappeared while the report read it" in one_error_line(res.output)


def test_box_commands_work_on_the_store_they_name(clean_store, tiny_weights, tmp_path):
    """A store made with --limit and its own weights: the command in a missing section's box
    repeats them, and adds the condition to that store."""
    import shlex

    from featlab.cli.main import cli
    from featlab.extraction import ExtractionSpec, extract
    from featlab.store import FeatureStore

    _, root, _ = clean_store
    store = str(tmp_path / "limited")
    extract(ExtractionSpec(store=store, root=root, dataset="synthetic", conditions="clean",
                           device="cpu", batch_size=24, chunk_size=24, image_size=32,
                           weights=tiny_weights, limit=24))
    result = report(store, str(tmp_path / "out"), n_boot=100)
    command = {s["id"]: s for s in result["sections"]}["fusion-figure-3"]["missing"][0]["command"]
    assert "--limit 24" in command and "--image-size 32" in command
    words = shlex.split(command)
    res = CliRunner().invoke(cli, words[1:] + ["--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert any(k.startswith("blur:") for k in FeatureStore(store).conditions)

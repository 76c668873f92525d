"""The documentation site: ``mkdocs build --strict`` of this checkout succeeds, every internal
link and anchor of every built page resolves, the generated pages hold every registered
entry, every command and every API name, and the home page and the command-line reference
render in headless Chromium."""
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NEEDED = ("mkdocs", "material", "mkdocs_click", "mkdocstrings_handlers.python")
MISSING = [name for name in NEEDED if importlib.util.find_spec(name.split(".")[0]) is None
           or importlib.util.find_spec(name) is None]
needs_mkdocs = pytest.mark.skipif(bool(MISSING), reason=f"{', '.join(MISSING)} not installed "
                                  "(pip install -e '.[docs]'); the site cannot be built here")


class _Page(HTMLParser):
    """The ids a page defines and the URLs it refers to (href of a/link, src of img/script)."""

    def __init__(self):
        super().__init__()
        self.ids, self.urls = set(), []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("name"):
            self.ids.add(attrs["name"])
        url = attrs.get("href") if tag in ("a", "link") else attrs.get("src")
        if url is not None and tag in ("a", "link", "img", "script"):
            self.urls.append(url)


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def broken_links(site: Path) -> list:
    """``(page, url, why)`` for every internal URL of the built site whose file or anchor is
    missing. External URLs (with a scheme or host) are not followed; a URL starting with
    ``/`` is read from the site root (the 404 page uses those)."""
    site = site.resolve()
    pages = {path: _parse(path) for path in site.rglob("*.html")}
    broken = []
    for path, page in pages.items():
        for url in page.urls:
            parts = urlsplit(url)
            if parts.scheme or parts.netloc:
                continue
            base = site if parts.path.startswith("/") else path.parent
            target = (base / unquote(parts.path).lstrip("/")).resolve() if parts.path else path
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file():
                broken.append((str(path.relative_to(site)), url, "no such file"))
            elif parts.fragment and target.suffix == ".html":
                ids = (pages.get(target) or _parse(target)).ids
                if unquote(parts.fragment) not in ids:
                    broken.append((str(path.relative_to(site)), url, "no such anchor"))
    return broken


def test_broken_links_finds_missing_files_and_anchors(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "index.html").write_text(
        '<h2 id="here">x</h2><a href="#here">ok</a><a href="../b.html#gone">anchor</a>'
        '<a href="../missing/">file</a><a href="https://example.org/x">external</a>'
        '<img src="../pic.png"><a href="../b.html#there">ok</a><a href="/a/#here">root</a>')
    (tmp_path / "b.html").write_text('<p id="there"></p>')
    (tmp_path / "pic.png").write_bytes(b"")
    assert sorted(broken_links(tmp_path)) == [
        (os.path.join("a", "index.html"), "../b.html#gone", "no such anchor"),
        (os.path.join("a", "index.html"), "../missing/", "no such file")]


def _hook(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "docs" / "hooks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(importlib.util.find_spec("markdown") is None, reason="markdown is not "
                    "installed (pip install -e '.[docs]')")
def test_hooks_fence_help_examples_and_write_roles_as_code():
    fence = _hook("click_examples").fence_examples
    lines = ["Text.", "", "featlab demo", "featlab demo --n-images 8", "", "After.",
             "```text", "", "featlab demo", "```"]
    assert fence(lines, {"featlab demo"}) == [
        "Text.", "", "```text", "featlab demo", "featlab demo --n-images 8", "```", "",
        "After.", "```text", "", "featlab demo", "```"]
    roles = _hook("rest_roles").replace_roles
    assert roles(["see :func:`~.stats.verdict` and :mod:`featlab.store", "   .layout`,",
                  "`:func:` alone", "```", ":class:`Kept`", "```"]) == [
        "see `verdict` and `featlab.store.layout`,", "`:func:` alone", "```",
        ":class:`Kept`", "```"]
    tables = _hook("registry_tables")
    assert tables._cell("a * b_c | d<e") == "a \\* b\\_c \\| d&lt;e"
    inline = "a marker inside a line is text: `<!-- featlab:registry nope -->`"
    assert tables.expand(inline) == inline
    with pytest.raises(ValueError, match="unknown registry table 'nope'"):
        tables.expand("<!-- featlab:registry nope -->")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The site built strictly from this checkout (any warning fails the build)."""
    out = tmp_path_factory.mktemp("site")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q",
                          "-f", str(ROOT / "mkdocs.yml"), "-d", str(out)],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-4000:]
    return out


def _text(path: Path) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", path.read_text(encoding="utf-8")))


@needs_mkdocs
def test_site_builds_strictly_and_every_internal_link_resolves(site):
    pages = sorted(p.relative_to(site).as_posix() for p in site.rglob("index.html"))
    for page in ("index.html", "tutorial/coco/index.html", "concepts/store/index.html",
                 "reference/cli/index.html", "reference/api/index.html",
                 "reference/registries/index.html", "benchmarks/index.html",
                 "changelog/index.html", "contributing/index.html"):
        assert page in pages
    assert broken_links(site) == []


@needs_mkdocs
def test_generated_pages_hold_every_registered_name_command_and_api_name(site):
    import featlab
    from featlab.analyses import ANALYSES
    from featlab.backbones.registry import BACKBONES
    from featlab.cli.main import COMMANDS
    from featlab.data.registry import DATASETS
    from featlab.perturbations import PERTURBATIONS
    from featlab.probes import PROBES
    from featlab.analyses.heads import HEAD_RECIPES
    from featlab.heads import HEADS
    from featlab.training.recipes import TRAIN_RECIPES

    tables = _text(site / "reference" / "registries" / "index.html")
    for registry in (DATASETS, BACKBONES, PERTURBATIONS, PROBES, ANALYSES, TRAIN_RECIPES,
                     HEAD_RECIPES, HEADS):
        for name in registry.names():
            assert f" {name} " in tables, (registry.kind, name)
    assert "Identity: the images as decoded." in tables  # a docstring, not only the names
    cli = (site / "reference" / "cli" / "index.html").read_text(encoding="utf-8")
    for command in COMMANDS:
        assert f'id="featlab-{command}"' in cli, command
    assert "--alpha-scale" in cli and '<h4 id="featlab-store-verify"' in cli
    assert "<code>featlab fit-head --store cache/coco --alpha 10\n" in cli  # examples fenced
    api = (site / "reference" / "api" / "index.html").read_text(encoding="utf-8")
    for name in featlab.__all__:
        if name != "__version__":
            assert f"featlab.{name}</code>" in api, name
    assert "ndarray of shape" in api  # parameters come from the numpydoc docstrings
    assert "Unreleased" in _text(site / "changelog" / "index.html")  # CHANGELOG.md included


@needs_mkdocs
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install "
                    "chromium); the site cannot be opened in a browser here")
def test_home_and_cli_pages_render_in_headless_chromium(site, tmp_path):
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--virtual-time-budget=5000"]
    cli_page = (site / "reference" / "cli" / "index.html").as_uri()
    dom = subprocess.run(flags + ["--dump-dom", cli_page], capture_output=True, text=True,
                         timeout=180).stdout
    assert "<title>Command line - featlab</title>" in dom
    assert 'id="featlab-fit-head"' in dom and "featlab fit-head --store cache/coco" in dom
    shot = tmp_path / "home.png"
    subprocess.run(flags + ["--window-size=1200,1600", f"--screenshot={shot}",
                            (site / "index.html").as_uri()], capture_output=True, timeout=180)
    pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=float)
    grey = pixels.mean(axis=2)
    assert grey.std() > 10 and (grey < 128).mean() > 0.01  # text drawn, not a blank page
    header = pixels[:40].reshape(-1, 3).mean(axis=0)
    assert header[2] > header[0] + 40  # the theme's stylesheet applied: a blue header bar

"""The package's structure, checked from its source: layers import only downward, no
import cycles, modules and functions stay small, the CLI starts without torch, and the
Python API has the names of the commands."""
import ast
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "featlab"

# Each layer may import its own floor and the floors below it, never one above.
FLOORS = {
    "_version": 0, "errors": 0, "registry": 0, "params": 0, "utils": 0,
    "data": 1, "perturbations": 1, "probes": 1, "mat": 1, "heads": 1,
    "conditions": 2,
    "store": 3, "backbones": 3,
    "extraction": 4, "training": 4,
    "analyses": 5,
    "reporting": 6, "replication": 6,
    "cli": 7, "__main__": 7,
}
# Imports inside functions, allowed only where they load heavy code on first use (documented
# at each place): the lazy CLI commands, the condition registries, the lazy package API.
LAZY_OK = ("featlab.cli.", "featlab.conditions", "featlab.registry")
MAX_MODULE_LINES = 260
MAX_FUNCTION_LINES = 60


def _modules():
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts), path


MODULES = dict(_modules())


def _resolve(module, node, is_package):
    """Absolute featlab module names that an import node reaches."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.startswith("featlab")]
    base = module.split(".") if is_package else module.split(".")[:-1]
    if node.level:
        base = base[:len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    if not target.startswith("featlab"):
        return []
    out = []
    for alias in node.names:
        sub = f"{target}.{alias.name}"
        out.append(sub if sub in MODULES else target)
    return out


def _imports(module, path):
    """(target, inside_function) for every featlab import of ``module``."""
    tree = ast.parse(path.read_text())
    found = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found.extend((t, in_function) for t in _resolve(module, child,
                                                                path.name == "__init__.py"))
            visit(child, inner)

    visit(tree, False)
    return found


def _floor(module):
    parts = module.split(".")
    return None if len(parts) == 1 else FLOORS[parts[1]]


def test_every_top_level_room_has_a_floor():
    rooms = {m.split(".")[1] for m in MODULES if m.count(".")}
    assert rooms <= set(FLOORS), f"unplaced rooms: {rooms - set(FLOORS)}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_run_downward(module):
    if module == "featlab":  # the package root only maps names to modules lazily
        return
    for target, in_function in _imports(module, MODULES[module]):
        if target == "featlab":
            pytest.fail(f"{module} imports the package root; import the module it needs")
        assert _floor(target) <= _floor(module), f"{module} imports {target} (upward)"
        if in_function:
            assert module.startswith(LAZY_OK), f"{module} imports {target} inside a function"


def test_no_import_cycles():
    graph = {m: {t for t, inside in _imports(m, p) if not inside and t in MODULES and t != m}
             for m, p in MODULES.items()}
    state, stack = {}, []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for t in graph[m]:
            if state.get(t) == "open":
                pytest.fail("import cycle: " + " -> ".join(stack[stack.index(t):] + [t]))
            if t not in state:
                visit(t)
        stack.pop()
        state[m] = "done"

    for m in graph:
        if m not in state:
            visit(m)


# Private names imported from another module, left while their modules are being rewritten
# in parallel branches (the fused-head analyses): each is to become public or move.
PRIVATE_IMPORTS_OK = {
    ("featlab.analyses.heads.robust_plots", "featlab.analyses.heads.plots", "_axes"),
    ("featlab.analyses.heads.robust_plots", "featlab.analyses.heads.plots", "_greens"),
    ("featlab.analyses.heads.scoring", "featlab.analyses.heads.fusion", "_joint"),
}


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _private_imports(module, path):
    """(owner, name) of each private name ``module`` imports from another featlab module,
    and of each private module it reaches from outside the package that holds it."""
    base = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.ImportFrom):
            continue
        source = ".".join(base[:len(base) - node.level + 1] + [node.module or ""]).strip(".") \
            if node.level else node.module or ""
        if not source.startswith("featlab"):
            continue
        for alias in node.names:
            full = f"{source}.{alias.name}"
            parts = (full if full in MODULES else source).split(".")
            owners = [(".".join(parts[:i]), part) for i, part in enumerate(parts) if _private(part)]
            found += [(owner, part) for owner, part in owners
                      if not f"{module}.".startswith(f"{owner}.")]
            if full not in MODULES and _private(alias.name):
                found.append((source, alias.name))
    return found


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_private_name_is_imported_from_another_module(module):
    """A name starting with ``_`` stays in its module (a private module in its package): a
    name another module needs is public, or lives in the module that owns it."""
    for source, name in _private_imports(module, MODULES[module]):
        assert (module, source, name) in PRIVATE_IMPORTS_OK, \
            f"{module} imports the private {source}.{name}; make it public or move it"


def test_private_import_check_finds_private_imports(tmp_path):
    path = tmp_path / "mod.py"
    cases = {
        ("featlab.perturbations.per_image", "from .blur import _box_slices, REGIONS"):
            [("featlab.perturbations.blur", "_box_slices")],
        ("featlab.training.crafting", "from ..perturbations.attacks._common import eval_mode"):
            [("featlab.perturbations.attacks", "_common")],
        ("featlab.analyses.local.mantel", "from . import _mantel_kernels\n"
                                          "from ..._version import __version__"): [],
        ("featlab.perturbations.attacks.pgd", "from ._common import boolean"): [],
    }
    for (module, code), expected in cases.items():
        path.write_text(code + "\n")
        assert _private_imports(module, path) == expected, code


def test_test_folders_mirror_the_package():
    """Every folder of tests/ that holds tests is named after a package of featlab (the tests
    of featlab/store/ in tests/store/), and no two test files share a name."""
    tests = Path(__file__).resolve().parent
    files = sorted(tests.rglob("test_*.py"))
    for folder in {f.parent for f in files} - {tests}:
        package = ROOT.joinpath(*folder.relative_to(tests).parts)
        assert (package / "__init__.py").is_file(), f"{folder} mirrors no featlab package"
    names = [f.name for f in files]
    assert len(names) == len(set(names)), "two test files share a name"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_and_functions_are_small(module):
    path = MODULES[module]
    text = path.read_text()
    assert text.count("\n") <= MAX_MODULE_LINES, f"{path} has {text.count(chr(10))} lines"
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            assert length <= MAX_FUNCTION_LINES, f"{path}:{node.lineno} {node.name} {length} lines"


def test_no_backend_switching_or_pyplot():
    for module, path in MODULES.items():
        text = path.read_text()
        assert "matplotlib.use(" not in text and "import matplotlib.pyplot" not in text, module


HEAVY = ("torch", "torchvision", "featlab.analyses", "sklearn", "matplotlib", "umap", "numba")


@pytest.mark.parametrize("args", [["--help"], ["extract", "--help"], ["fit-head", "--help"],
                                  ["mantel", "--help"], ["store", "info", "STORE"]])
def test_the_command_line_starts_without_heavy_imports(args, tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    code = ("import sys\nfrom featlab.cli.main import main\n"
            f"try:\n    main({[str(store) if a == 'STORE' else a for a in args]!r})\n"
            "except SystemExit:\n    pass\n"
            f"print(sorted(m for m in sys.modules if m.startswith({HEAVY!r})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=tmp_path, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout + out.stderr


def test_python_api_has_the_names_of_the_commands():
    import featlab
    from featlab.analyses import ANALYSES
    from featlab.cli.main import COMMANDS

    for command in ANALYSES.names():
        assert command in COMMANDS
        function = ANALYSES.get(command)
        assert getattr(featlab, command.replace("-", "_")) is function
        assert "out_dir" in inspect.signature(function).parameters


@pytest.mark.parametrize("command", ["fit-head", "pca-shift", "isotropy", "symmetry", "mantel",
                                     "lipschitz"])
def test_cli_flags_are_python_parameters(command):
    """Every flag of an analysis command is a parameter of its function (repeatable flags
    take the plural: --alpha -> alphas, --radius -> radii)."""
    import click

    from featlab.analyses import ANALYSES
    from featlab.cli.main import cli

    ctx = click.Context(cli)
    cmd = cli.get_command(ctx, command)
    params = set(inspect.signature(ANALYSES.get(command)).parameters)
    cli_only = {"json_out", "out", "store"}
    for p in cmd.params:
        if p.name in cli_only:
            continue
        assert p.name in params or (command == "lipschitz" and p.name in {
            "heads", "nb_batches", "batch_size", "pool_factor", "clever_radius", "norm",
            "max_samples", "seed"}), f"{command} --{p.name} is not a parameter"


def test_declared_registry_entries_are_registered():
    from featlab.backbones import BACKBONES
    from featlab.data import DATASETS

    for registry in (BACKBONES, DATASETS):
        for name in registry.declared:
            assert callable(registry.get(name)), name
        assert set(registry._entries) == set(registry.declared)

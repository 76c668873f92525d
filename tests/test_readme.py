"""The README: short (≤ 12 KB), its first two commands are the demo and what CI runs, its
links lead to files of the repository, and every ``featlab ...`` command in it and in the
tutorial pages parses with the installed command line (the command, its subcommand and every
option exist and take the values given)."""
import re
import shlex
from pathlib import Path

import click
import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MAX_BYTES = 12 * 1024
PAGES = [README] + sorted((ROOT / "docs" / "tutorial").glob("*.md")) + sorted(
    (ROOT / "docs" / "concepts").glob("*.md")) + [ROOT / "docs" / "index.md"]


def bash_commands(text: str) -> list:
    """Each command line of the ```bash blocks of ``text``, continuation lines joined."""
    commands = []
    for block in re.findall(r"^```bash\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL):
        commands += [line.strip() for line in block.replace("\\\n", " ").splitlines()
                     if line.strip() and not line.strip().startswith("#")]
    return commands


def featlab_args(line: str):
    """The arguments after ``featlab`` of one shell line (comments dropped), or None."""
    words = shlex.split(line, comments=True)
    return words[1:] if words and words[0] == "featlab" else None


def parse(args: list) -> click.Context:
    """Parse ``featlab ARGS`` with the real click commands, without running them: a missing
    command or subcommand, an unknown option or a value of the wrong type raises."""
    from featlab.cli.main import cli

    command, name, parent = cli, "featlab", None
    args = list(args)
    while isinstance(command, click.Group):
        parent = click.Context(command, info_name=name, parent=parent)
        name = args.pop(0)
        sub = command.get_command(parent, name)
        if sub is None:
            raise click.UsageError(f"no command {name!r}")
        command = sub
    return command.make_context(name, args, parent=parent)


def test_readme_is_at_most_12_kb():
    size = README.stat().st_size
    assert size <= MAX_BYTES, f"README.md is {size:,} bytes; the limit is {MAX_BYTES:,}"


def test_first_commands_run_the_demo_and_what_ci_runs():
    first, second = bash_commands(README.read_text(encoding="utf-8"))[:2]
    assert first.startswith("python3 -m venv .venv && ") and first.endswith(" && featlab demo")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    ci_line = next(line for line in ci.splitlines() if line.startswith("python3 -m venv"))
    assert second == ci_line.replace(" -q ", " ")  # CI adds only pip's -q
    assert second.endswith(" && python -m pytest")
    assert first.split(" && ")[:3] == second.split(" && ")[:3]  # same venv, same torch


def test_readme_links_lead_to_files_of_the_repository():
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README.read_text(encoding="utf-8"))
    local = [link for link in links if "://" not in link]
    assert len(local) >= 10  # the "where to read more" list
    missing = [link for link in local if not (ROOT / link).exists()]
    assert missing == []


def test_parse_rejects_unknown_commands_options_and_bad_values():
    assert parse(["fit-head", "--store", "s", "--alpha", "0", "--alpha", "10"]).params[
        "store"] == "s"
    with pytest.raises(click.UsageError):
        parse(["fit-heads", "--store", "s"])
    with pytest.raises(click.NoSuchOption):
        parse(["fit-head", "--store", "s", "--alpah", "1"])
    with pytest.raises(click.BadParameter):
        parse(["fit-head", "--store", "s", "--alpha", "ten"])
    with pytest.raises(click.UsageError):
        parse(["store", "inf", "cache/x"])


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_featlab_command_in_readme_and_tutorials_parses(page):
    lines = [args for line in bash_commands(page.read_text(encoding="utf-8"))
             if (args := featlab_args(line))]
    if page == README:
        assert len(lines) >= 12  # the study step by step
    for args in lines:
        try:
            parse(args)
        except click.ClickException as error:
            pytest.fail(f"{page.name}: featlab {' '.join(args)}: {error.format_message()}")

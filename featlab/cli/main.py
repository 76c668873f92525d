"""The ``featlab`` command line: a thin layer over the Python API.

Every command parses its flags into the library's arguments, calls the library function of
the same name (which writes JSON and figures under ``analyses/``) and prints a short
summary. A :class:`FeatlabError` (a user mistake) prints one line and exits with code 2;
nothing on disk is touched.

Commands are loaded only when they run (or when ``--help`` lists them): each command module
imports click alone at the top and the library inside the command, so ``featlab --help``,
``featlab <cmd> --help`` and ``featlab store info`` start without torch.
"""
from __future__ import annotations

import logging
import sys
from importlib import import_module

import click

from ..errors import FeatlabError
from ..utils.memory import keep_freed_memory

COMMANDS = {
    "data": "featlab.cli.data_cmd:data_group",
    "extract": "featlab.cli.extract_cmd:extract_command",
    "fit-head": "featlab.cli.fit_head_cmd:fit_head_command",
    "pca-shift": "featlab.cli.pca_shift_cmd:pca_shift_command",
    "isotropy": "featlab.cli.local_cmd:isotropy_command",
    "symmetry": "featlab.cli.local_cmd:symmetry_command",
    "mantel": "featlab.cli.local_cmd:mantel_command",
    "lipschitz": "featlab.cli.local_cmd:lipschitz_command",
    "robustness": "featlab.cli.robustness_cmd:robustness_command",
    "report": "featlab.cli.report_cmd:report_command",
    "store": "featlab.cli.store_cmd:store_group",
    "demo": "featlab.cli.demo_cmd:demo_command",
    "train": "featlab.cli.train_cmd:train_command",
    "replicate": "featlab.cli.replicate_cmd:replicate_command",
}


def given_values(command: click.Command, args: list) -> dict:
    """Option (its first spelling) -> the values given for it in ``args``, for the options
    of ``command`` that take a value (``--name VALUE``, ``--name=VALUE``, ``-kVALUE``)."""
    spellings = {opt: param for param in command.params if isinstance(param, click.Option)
                 and not param.is_flag and not param.count for opt in param.opts}
    found: dict = {}
    tokens = iter(args)
    for token in tokens:
        if token == "--":
            break
        name, sep, value = token.partition("=") if token.startswith("--") else (token, "", "")
        if not sep and name not in spellings and token[:2] in spellings and len(token) > 2:
            name, value, sep = token[:2], token[2:], "attached"
        if name in spellings:
            param = spellings[name]
            value = value if sep else next(tokens, "")
            found.setdefault((param.opts[0], param.multiple), []).append(value)
    return found


def refuse_repeats(name: str, command: click.Command, args: list) -> None:
    """One line when an option that holds one value is given several times (click would
    keep the last one silently)."""
    for (opt, multiple), values in given_values(command, args).items():
        if not multiple and len(values) > 1:
            raise FeatlabError(f"{opt} given {len(values)} times ({', '.join(values)}); featlab "
                               f"{name} takes one {opt}: give it once (run the command once per "
                               f"value)")


class FeatlabGroup(click.Group):
    """Lazy commands (:data:`COMMANDS`); user errors as one line and exit code 2; an
    option that holds one value refused when repeated."""

    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        module, attr = COMMANDS[name].split(":")
        return getattr(import_module(module), attr)

    def resolve_command(self, ctx, args):
        name, command, rest = super().resolve_command(ctx, args)
        if command is not None and not isinstance(command, click.Group):
            refuse_repeats(name, command, rest)
        return name, command, rest

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except FeatlabError as err:
            click.echo(f"featlab: error: {err}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("featlab: interrupted; rerun the same command to continue", err=True)
            sys.exit(130)


@click.group(cls=FeatlabGroup, context_settings=dict(help_option_names=["-h", "--help"]))
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
@click.option("-q", "--quiet", is_flag=True, help="Warnings only.")
@click.version_option(package_name="featlab")
def cli(verbose, quiet):
    """featlab: cache backbone features of clean, blurred and attacked images, then analyse
    them on the CPU.

    \b
    featlab demo
    featlab extract --dataset coco --root DATA/coco --store cache/coco \\
        --backbones imagenet-resnet18,places365-resnet18 --conditions clean,blur:sigma=1:5:10
    featlab fit-head --store cache/coco --alpha 0 --alpha 10
    featlab pca-shift --store cache/coco --condition blur:sigma=5
    """
    keep_freed_memory()  # faster forward passes on the CPU: featlab/utils/memory.py
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, format="featlab: %(message)s", stream=sys.stderr, force=True)
    for noisy in ("numba", "matplotlib", "PIL", "h5py"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv=None):
    cli.main(args=argv, prog_name="featlab")

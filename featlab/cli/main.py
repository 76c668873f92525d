"""The ``featlab`` command line: a thin layer over the Python API.

Every command parses its flags into the library's arguments, calls the library, prints a
short summary and writes JSON/figures under ``analyses/``. A :class:`FeatlabError` (a user
mistake) prints one line and exits with code 2; nothing on disk is touched.
"""
from __future__ import annotations

import logging
import sys

import click

from ..errors import FeatlabError


class FeatlabGroup(click.Group):
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
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, format="featlab: %(message)s", stream=sys.stderr, force=True)
    for noisy in ("numba", "matplotlib", "PIL", "h5py"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _register_commands() -> None:
    from . import data_cmd, demo_cmd, extract_cmd, heads_cmd, local_cmd, pca_cmd, store_cmd  # noqa: F401


def main(argv=None):
    _register_commands()
    cli.main(args=argv, prog_name="featlab")


_register_commands()

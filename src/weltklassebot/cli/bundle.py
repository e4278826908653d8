"""``python -m cli bundle``: incident bundles (docs/bundles.md).

``bundle verify BUNDLE`` checks an archive's own checksums and safety rules without replaying
it. ``bundle RUN_DIR|STATE_DIR [options]`` (any first word that is not a sub-command) runs the
group's default sub-command, ``write``, which writes a bundle.
"""

from __future__ import annotations

import re
from pathlib import Path

import click

from weltklassebot.cli.options import json_option, print_json

DEFAULT_COMMAND = "write"

_SIZE = re.compile(r"(\d+)\s*([KMGT]?)(i?B)?", re.IGNORECASE)
_SCALE = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


class BundleGroup(click.Group):
    """A group whose first word is either a sub-command or the path to bundle.

    ``bundle verify FILE`` dispatches as usual; anything else (``bundle RUN_DIR --out F``,
    ``bundle --out F RUN_DIR``) is handed to the default sub-command. A directory that happens
    to be called ``verify`` is written ``./verify``.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args:
            click.echo(ctx.get_help())
            ctx.exit(0)
        first = args[0]
        if first not in self.commands and first not in self.get_help_option_names(ctx):
            args = [DEFAULT_COMMAND, *args]
        return super().parse_args(ctx, args)


@click.group(
    name="bundle",
    cls=BundleGroup,
    options_metavar="",
    subcommand_metavar="RUN_DIR|STATE_DIR [OPTIONS] | verify BUNDLE [--json]",
    help="Write an incident bundle of a run or state directory, or verify one "
         "(`bundle verify BUNDLE`). See docs/bundles.md.",
)
def command() -> None:
    """Group of the incident-bundle commands."""


def _size(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    """A byte count: ``1048576``, ``512MiB``, ``40G``."""
    if value is None:
        return None
    match = _SIZE.fullmatch(value.strip())
    if match is None:
        raise click.BadParameter(f"{value!r} is not a size (e.g. 1048576, 512MiB, 40GiB)",
                                 ctx, param)
    return int(match.group(1)) * _SCALE[match.group(2).upper()]


@command.command(DEFAULT_COMMAND, hidden=True)
@click.argument("source", type=click.Path(path_type=Path))
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Bundle file to write (default: the bundles directory beside the state "
                   "directory).")
@click.option("--with-snapshot", is_flag=True, help="Include the data snapshot itself.")
@json_option
def write_command(source: Path, out: Path | None, with_snapshot: bool, as_json: bool) -> None:
    """Write one bundle of RUN_DIR or STATE_DIR (``python -m cli bundle SOURCE``)."""
    import sys

    from weltklassebot.runs.bundle import build_bundle

    path, manifest = build_bundle(source, out, with_snapshot=with_snapshot,
                                  invocation=["python -m cli", *sys.argv[1:]])
    if as_json:
        print_json({"bundle": str(path), "run_id": manifest.get("run_id"),
                    "source": manifest.get("source"), "created": manifest.get("created"),
                    "with_snapshot": with_snapshot})
        return
    click.echo(f"bundle written: {path}")
    click.echo(f"  run {manifest.get('run_id')} ({manifest.get('source')} directory "
               f"{manifest.get('source_path')}); replay it with `python -m cli replay {path}`")


@command.command("verify")
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option("--max-bytes", metavar="SIZE", callback=_size, default=None,
              help="Refuse more than this many bytes of members in all, and in one member "
                   "(default 20GiB).")
@click.option("--max-members", type=click.IntRange(1), default=None,
              help="Refuse more than this many members (default 10000).")
@json_option
def verify(bundle: Path, max_bytes: int | None, max_members: int | None, as_json: bool) -> None:
    """Check BUNDLE's checksums and safety rules without replaying it.

    Exit 0 when every member matches bundle.json, 1 when the archive is damaged (the member and
    what is wrong are named), 2 when it is missing, not a bundle, or refused as unsafe.
    """
    import dataclasses

    from weltklassebot.errors import WeltklasseError
    from weltklassebot.service.bundle_archive import (
        BundleDamaged,
        BundleRefused,
        Limits,
        verify_bundle,
    )

    limits = Limits()
    if max_bytes is not None:
        limits = dataclasses.replace(limits, max_total_bytes=max_bytes, max_member_bytes=max_bytes)
    if max_members is not None:
        limits = dataclasses.replace(limits, max_members=max_members)
    try:
        info = verify_bundle(bundle, limits)
    except WeltklasseError as exc:
        if as_json:
            status = ("damaged" if isinstance(exc, BundleDamaged) else
                      "refused" if isinstance(exc, BundleRefused) else "unusable")
            print_json({"status": status, "path": str(bundle),
                        "member": getattr(exc, "member", None), "error": exc.message})
        raise
    if as_json:
        manifest = {key: value for key, value in info.manifest.items() if key != "members"}
        print_json({
            "status": "ok", "path": str(bundle), "members": len(info.members),
            "bytes": info.total_bytes, "archive_bytes": info.archive_bytes,
            "created": info.created, "run_id": info.run_id, "manifest": manifest,
            "files": [{"name": m.name, "sha256": m.sha256, "bytes": m.size}
                      for m in info.members],
        })
        return
    run = f", run {info.run_id}" if info.run_id else ""
    count = len(info.members)
    click.echo(f"OK {bundle}: {count} member{'' if count == 1 else 's'}, {info.total_bytes} bytes, "
               f"created {info.created}{run}")

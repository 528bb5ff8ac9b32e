"""The command line every service shares: ``<svc> serve``, ``<svc> migrate`` and the
service's own commands (``seed-demo``, ...).

A service's ``main.py`` keeps only what is its own (its composition root and commands)::

    main = service_cli("careplan", Settings, serve, extra={"seed-demo": seed_demo})
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

from pydantic import ValidationError

from servicekit.config import ServiceSettings

S = TypeVar("S", bound=ServiceSettings)


class ServiceMain(Protocol):
    """A service's console entry point: ``main()`` reads ``sys.argv``."""

    def __call__(self, argv: Sequence[str] | None = None) -> None: ...


def load_settings(factory: Callable[..., S]) -> S:
    try:
        return factory()
    except ValidationError as exc:
        missing = ", ".join(".".join(str(p) for p in err["loc"]) for err in exc.errors())
        prefix = getattr(factory, "model_config", {}).get("env_prefix", "")
        sys.stderr.write(f"invalid or missing settings ({prefix}*): {missing}\n")
        raise SystemExit(2) from exc


def run_cli(
    argv: Sequence[str] | None,
    *,
    name: str,
    settings_factory: Callable[..., S],
    serve: Callable[[S], None],
    migrations_package: str,
    extra: dict[str, Callable[[S, list[str]], None]] | None = None,
) -> None:
    parser = argparse.ArgumentParser(prog=name, description=f"the carenet {name} service")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the gRPC server until SIGTERM")
    sub.add_parser("migrate", help="upgrade the database to the latest migration")
    for command in extra or {}:
        extra_parser = sub.add_parser(command)
        extra_parser.add_argument("args", nargs=argparse.REMAINDER)
    args, unknown = parser.parse_known_args(argv)
    if unknown and args.command in ("serve", "migrate"):
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    settings = load_settings(settings_factory)
    if args.command == "serve":
        serve(settings)
    elif args.command == "migrate":
        from servicekit.migrations import upgrade

        upgrade(migrations_package, settings.database_url)
    else:
        (extra or {})[args.command](settings, [*args.args, *unknown])


def service_cli(
    name: str,
    settings_factory: Callable[..., S],
    serve: Callable[[S], None],
    *,
    extra: dict[str, Callable[[S, list[str]], None]] | None = None,
) -> ServiceMain:
    """The ``main(argv)`` of service ``name``: :func:`run_cli` with its settings, its
    ``serve``, its migrations (package ``<name>.migrations``) and its own commands."""

    def main(argv: Sequence[str] | None = None) -> None:
        run_cli(
            argv,
            name=name,
            settings_factory=settings_factory,
            serve=serve,
            migrations_package=f"{name}.migrations",
            extra=extra,
        )

    return main

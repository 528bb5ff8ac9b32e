"""``carenet``: the command line of a KIS or an insurer, on :mod:`carenet_client`.

It needs only where the services are and credentials: the ``CARENET_*`` variables
(:mod:`carenet_client.config`), or a profile that ``carenet login`` stored (a JSON file
readable by its owner only, ``$CARENET_CONFIG`` or ``~/.config/carenet/profiles.json``);
variables win over the profile. Lists print one JSON object per line (or a table on a
terminal); progress bars appear only when stderr is a terminal. A failed call prints its
code, reason and field violations to stderr and exits with 1.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from google.protobuf import json_format
from google.protobuf.message import Message
from rich.console import Console
from rich.table import Table

from carenet.outcomes.v1 import outcomes_pb2
from carenet.referral.v1 import referral_pb2
from carenet_client import measurements as measurement_csv
from carenet_client import reports as report_table
from carenet_client.auth import ClientCredentials, PasswordLogin, TokenSource
from carenet_client.client import Carenet, IngestResult
from carenet_client.config import SERVICES, Settings
from carenet_client.errors import CarenetError

app = typer.Typer(
    help="carenet's API from the command line: offers, referrals, measurements, reports.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
offers_app = typer.Typer(help="The regional menu card.", no_args_is_help=True)
referrals_app = typer.Typer(help="Referrals and their event stream.", no_args_is_help=True)
measurements_app = typer.Typer(help="Measurements into the outcomes service.", no_args_is_help=True)
reports_app = typer.Typer(help="Outcome reports and contract evaluation.", no_args_is_help=True)
people_app = typer.Typer(help="The people behind user ids.", no_args_is_help=True)
app.add_typer(offers_app, name="offers")
app.add_typer(referrals_app, name="referrals")
app.add_typer(measurements_app, name="measurements")
app.add_typer(reports_app, name="reports")
app.add_typer(people_app, name="people")

err = Console(stderr=True)
_state: dict[str, str] = {"profile": "default"}


# ------------------------------------------------------------------ profiles


def config_path() -> Path:
    explicit = os.environ.get("CARENET_CONFIG")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "carenet" / "profiles.json"


def _read_profiles() -> dict[str, dict[str, Any]]:
    path = config_path()
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    return data if isinstance(data, dict) else {}


def _write_profiles(profiles: dict[str, dict[str, Any]]) -> Path:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(profiles, handle, indent=2, sort_keys=True)
    path.chmod(0o600)
    return path


def settings() -> Settings:
    profile = _read_profiles().get(_state["profile"], {})
    return Settings.from_env().merged(profile)


@contextmanager
def connected(on_behalf_of: str = "") -> Iterator[Carenet]:
    try:
        found = settings()
        if on_behalf_of:
            found = Settings(**{**asdict(found), "on_behalf_of": on_behalf_of})
        client = Carenet.from_settings(found)
    except ValueError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    try:
        with client:
            yield client
    except CarenetError as exc:
        report_error(exc)
        raise typer.Exit(1) from None


def report_error(exc: CarenetError) -> None:
    sys.stderr.write(f"error: {exc}\n")
    if exc.metadata:
        sys.stderr.write(f"  metadata: {json.dumps(exc.metadata, sort_keys=True)}\n")


# ------------------------------------------------------------------ output


def as_dict(message: Message) -> dict[str, Any]:
    found: dict[str, Any] = json_format.MessageToDict(message, preserving_proto_field_name=True)
    return found


def emit(items: Iterator[Message], columns: list[tuple[str, str]], as_json: bool | None) -> int:
    """JSON lines, or a table on a terminal; returns how many items."""
    table_mode = sys.stdout.isatty() if as_json is None else not as_json
    count = 0
    if not table_mode:
        for item in items:
            sys.stdout.write(json.dumps(as_dict(item), ensure_ascii=False) + "\n")
            sys.stdout.flush()
            count += 1
        return count
    table = Table(*(title for title, _ in columns))
    for item in items:
        data = as_dict(item)
        row = []
        for _, path in columns:
            value: Any = data
            for part in path.split("."):
                value = value.get(part, "") if isinstance(value, dict) else ""
            row.append(str(value))
        table.add_row(*row)
        count += 1
    Console().print(table)
    return count


JsonOption = Annotated[
    bool | None,
    typer.Option("--json/--table", help="JSON lines or a table (default: table on a terminal)"),
]


# ------------------------------------------------------------------ login


@app.callback()
def main_options(
    profile: Annotated[
        str, typer.Option(envvar="CARENET_PROFILE", help="The stored profile to use.")
    ] = "default",
) -> None:
    _state["profile"] = profile


@app.command()
def login(
    issuer: Annotated[str, typer.Option(envvar="CARENET_ISSUER", help="Keycloak realm URL.")],
    client_id: Annotated[str, typer.Option(envvar="CARENET_CLIENT_ID")],
    client_secret: Annotated[
        str,
        typer.Option(envvar="CARENET_CLIENT_SECRET", prompt=True, hide_input=True),
    ],
    endpoint: Annotated[
        str, typer.Option(envvar="CARENET_ENDPOINT", help="host:port of all services")
    ] = "",
    identity_target: Annotated[str, typer.Option(envvar="CARENET_IDENTITY_TARGET")] = "",
    referral_target: Annotated[str, typer.Option(envvar="CARENET_REFERRAL_TARGET")] = "",
    careplan_target: Annotated[str, typer.Option(envvar="CARENET_CAREPLAN_TARGET")] = "",
    outcomes_target: Annotated[str, typer.Option(envvar="CARENET_OUTCOMES_TARGET")] = "",
    username: Annotated[
        str, typer.Option(envvar="CARENET_USERNAME", help="a person's login (trials)")
    ] = "",
    password: Annotated[str, typer.Option(envvar="CARENET_PASSWORD")] = "",
    on_behalf_of: Annotated[
        str,
        typer.Option(envvar="CARENET_ON_BEHALF_OF", help="Keycloak user id the system acts for"),
    ] = "",
    plaintext: Annotated[
        bool, typer.Option(envvar="CARENET_PLAINTEXT", help="no TLS (local runs)")
    ] = False,
    ca_file: Annotated[str, typer.Option(envvar="CARENET_CA_FILE")] = "",
    client_cert: Annotated[str, typer.Option(envvar="CARENET_CLIENT_CERT")] = "",
    client_key: Annotated[str, typer.Option(envvar="CARENET_CLIENT_KEY")] = "",
) -> None:
    """Checks the credentials against the issuer and stores them as a profile (mode 0600).

    A person's password is never stored: with --username, give it again through
    CARENET_PASSWORD for each command."""
    source: TokenSource
    verify: bool | str = ca_file or True
    if username:
        source = PasswordLogin(
            issuer, client_id, client_secret or None, username, password, verify=verify
        )
    else:
        source = ClientCredentials(issuer, client_id, client_secret or None, verify=verify)
    try:
        source.access_token()
    except Exception as exc:
        err.print(f"[red]login failed:[/red] {exc}")
        raise typer.Exit(1) from None
    targets = {
        s: t
        for s, t in zip(
            SERVICES,
            (identity_target, referral_target, careplan_target, outcomes_target),
            strict=True,
        )
        if t
    }
    profile: dict[str, Any] = {
        "issuer": issuer,
        "client_id": client_id,
        "client_secret": client_secret,
        "endpoint": endpoint,
        "targets": targets,
        "username": username,
        "on_behalf_of": on_behalf_of,
        "plaintext": plaintext,
        "ca_file": ca_file,
        "client_cert": client_cert,
        "client_key": client_key,
    }
    profiles = _read_profiles()
    profiles[_state["profile"]] = {k: v for k, v in profile.items() if v}
    path = _write_profiles(profiles)
    who = username or client_id
    sys.stdout.write(f"logged in as {who}; profile {_state['profile']!r} stored in {path}\n")


@app.command()
def logout() -> None:
    """Removes the stored profile."""
    profiles = _read_profiles()
    if profiles.pop(_state["profile"], None) is not None:
        _write_profiles(profiles)
    sys.stdout.write(f"profile {_state['profile']!r} removed\n")


@app.command()
def token() -> None:
    """Prints a bearer token of the current credentials (for grpcurl)."""
    try:
        source = Carenet.from_settings(settings()).credentials
        sys.stdout.write(source.access_token() + "\n")
    except Exception as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None


# ------------------------------------------------------------------ offers


@offers_app.command("find")
def offers_find(
    condition: Annotated[list[str], typer.Option(help="ICPC code, e.g. T90 (repeat)")] = [],  # noqa: B006
    age: Annotated[int | None, typer.Option()] = None,
    bmi: Annotated[float | None, typer.Option()] = None,
    risk_factor: Annotated[list[str], typer.Option()] = [],  # noqa: B006
    pam_level: Annotated[int | None, typer.Option()] = None,
    postcode: Annotated[str, typer.Option(help="4 digits")] = "",
    municipality: Annotated[str, typer.Option(help="CBS code, e.g. GM0772")] = "",
    language: Annotated[list[str], typer.Option(help="ISO 639 code (repeat)")] = [],  # noqa: B006
    eligible_only: Annotated[bool, typer.Option()] = False,
    limit: Annotated[int | None, typer.Option(help="at most this many matches")] = None,
    as_json: JsonOption = None,
) -> None:
    """Offers of the menu card for a patient's profile, best first (no identifying data)."""
    profile = referral_pb2.PatientProfile(
        conditions=condition,
        risk_factors=risk_factor,
        postcode=postcode,
        municipality_code=municipality,
        languages=language,
    )
    if age is not None:
        profile.age = age
    if bmi is not None:
        profile.bmi = bmi
    if pam_level is not None:
        profile.pam_level = pam_level
    with connected() as client:
        emit(
            client.referrals.find_offers(profile, eligible_only=eligible_only, limit=limit),
            [
                ("offer", "offer.name"),
                ("title", "offer.title"),
                ("eligible", "eligibility.eligible"),
                ("score", "score"),
                ("capacity", "capacity_status"),
            ],
            as_json,
        )


# ------------------------------------------------------------------ referrals


@referrals_app.command("create")
def referrals_create(
    patient: Annotated[str, typer.Option(help="p-0001 or patients/p-0001")],
    offer: Annotated[str, typer.Option(help="offers/... or the offer id")],
    reason: Annotated[str, typer.Option(help="the reason for referral, for the target")],
    age: Annotated[int | None, typer.Option()] = None,
    bmi: Annotated[float | None, typer.Option()] = None,
    postcode: Annotated[str, typer.Option()] = "",
    draft: Annotated[bool, typer.Option()] = False,
    request_id: Annotated[
        str, typer.Option(help="repeat a create safely: the same id returns the first result")
    ] = "",
    on_behalf_of: Annotated[
        str,
        typer.Option(
            envvar="CARENET_ON_BEHALF_OF", help="Keycloak user id of the referring clinician"
        ),
    ] = "",
) -> None:
    """Refers a patient to an offer; prints the referral as JSON."""
    profile = referral_pb2.PatientProfile(postcode=postcode)
    if age is not None:
        profile.age = age
    if bmi is not None:
        profile.bmi = bmi
    with connected(on_behalf_of) as client:
        created = client.referrals.create_referral(
            patient, offer, reason, profile=profile, draft=draft, request_id=request_id or None
        )
        sys.stdout.write(json.dumps(as_dict(created), ensure_ascii=False) + "\n")


def _status(value: str) -> int:
    if not value:
        return 0
    name = value.upper().replace("-", "_")
    name = name if name.startswith("REFERRAL_STATUS_") else f"REFERRAL_STATUS_{name}"
    try:
        return int(referral_pb2.ReferralStatus.Value(name))
    except ValueError:
        raise typer.BadParameter(f"unknown status {value!r}") from None


@referrals_app.command("list")
def referrals_list(
    patient: Annotated[
        str, typer.Option(help="one patient; every patient you may see when empty")
    ] = "",
    status: Annotated[str, typer.Option(help="e.g. requested, in-progress")] = "",
    limit: Annotated[int | None, typer.Option()] = None,
    as_json: JsonOption = None,
) -> None:
    """The referrals you made, received or may see, page after page."""
    with connected() as client:
        emit(
            client.referrals.list_referrals(
                patient or "patients/-", status=_status(status), limit=limit
            ),
            [
                ("referral", "name"),
                ("offer", "offer"),
                ("status", "status"),
                ("created", "create_time"),
            ],
            as_json,
        )


@referrals_app.command("watch")
def referrals_watch(
    from_cursor: Annotated[
        int, typer.Option("--from", help="deliver events after this cursor (0: all)")
    ] = 0,
    patient: Annotated[str, typer.Option()] = "",
    follow: Annotated[
        bool, typer.Option("--follow/--no-follow", help="keep following new events")
    ] = True,
    limit: Annotated[int | None, typer.Option(help="stop after this many events")] = None,
) -> None:
    """Referral events as JSON lines; resume later with --from the last cursor printed."""
    with connected() as client:
        count = 0
        try:
            for event in client.referrals.watch_referral_events(
                from_cursor, patient=patient, follow=follow
            ):
                sys.stdout.write(json.dumps(as_dict(event), ensure_ascii=False) + "\n")
                sys.stdout.flush()
                count += 1
                if limit is not None and count >= limit:
                    break
        except KeyboardInterrupt:
            pass


# ------------------------------------------------------------------ measurements


@measurements_app.command("import")
def measurements_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    rejects: Annotated[
        Path | None, typer.Option(help="where to write rejected rows (default FILE.rejects.csv)")
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=5000)] = 2000,
) -> None:
    """Streams a CSV of measurements into outcomes; prints a JSON summary (accepted,
    duplicate, corrected, rejected) and writes the rejected rows with their reasons."""
    records: list[dict[str, str]] = []
    with file.open(newline="", encoding="utf-8-sig") as handle:
        total_rows = max(sum(1 for _ in handle) - 1, 0)
    progress_bar = None
    task = None
    if sys.stderr.isatty():
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        progress_bar = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=err,
        )
        task = progress_bar.add_task(f"importing {file.name}", total=total_rows)
        progress_bar.start()

    def on_progress(sent: int, _: IngestResult) -> None:
        if progress_bar is not None and task is not None:
            progress_bar.update(task, completed=sent)

    def rows() -> Iterator[Any]:
        with file.open(newline="", encoding="utf-8-sig") as handle:
            for record, row in measurement_csv.read_rows(handle):
                records.append(record)
                yield row

    try:
        with connected() as client:
            result = client.outcomes.ingest_measurements(
                rows(), batch_size=batch_size, progress=on_progress
            )
    except ValueError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    finally:
        if progress_bar is not None:
            progress_bar.stop()
    rejects_path = rejects or file.with_name(file.stem + ".rejects.csv")
    summary: dict[str, Any] = {
        "rows": result.rows,
        "accepted": result.accepted,
        "duplicate": result.duplicates,
        "corrected": result.corrected,
        "rejected": result.rejected,
    }
    if result.rejected:
        with rejects_path.open("w", newline="", encoding="utf-8") as handle:
            measurement_csv.write_rejects(handle, records, result.results)
        summary["rejects_file"] = str(rejects_path)
    sys.stdout.write(json.dumps(summary) + "\n")


# ------------------------------------------------------------------ reports


@reports_app.command("list")
def reports_list(
    contract: Annotated[str, typer.Option(help="contracts/... or the contract id")] = "",
    limit: Annotated[int | None, typer.Option()] = None,
    as_json: JsonOption = None,
) -> None:
    """Reports you may see (of one contract), without their cells."""
    with connected() as client:
        emit(
            client.outcomes.list_reports(contract, limit=limit),
            [
                ("report", "name"),
                ("contract", "contract"),
                ("cells", "cell_count"),
                ("created", "create_time"),
            ],
            as_json,
        )


@reports_app.command("export")
def reports_export(
    contract: Annotated[str, typer.Option(help="contracts/... or the contract id")],
    report: Annotated[
        str, typer.Option(help="reports/...; the contract's newest report when empty")
    ] = "",
    output_format: Annotated[str, typer.Option("--format", help="csv or xlsx")] = "csv",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="file to write (csv: stdout when absent)")
    ] = None,
) -> None:
    """Exports a report's cells, one row per cell; suppressed cells have empty numbers."""
    if output_format not in ("csv", "xlsx"):
        raise typer.BadParameter("--format is csv or xlsx")
    if output_format == "xlsx" and output is None:
        raise typer.BadParameter("--format xlsx needs --output FILE.xlsx")
    with connected() as client:
        name = report
        if not name:
            newest = max(
                client.outcomes.list_reports(contract),
                key=lambda r: (r.create_time.seconds, r.create_time.nanos),
                default=None,
            )
            if newest is None:
                err.print(f"[red]error:[/red] no report of {contract} is visible to you")
                raise typer.Exit(1)
            name = newest.name
        rows = report_table.cell_rows(name, client.outcomes.stream_report(name))
        if output_format == "xlsx":
            assert output is not None
            count = report_table.write_xlsx(output, rows)
        elif output is None:
            count = report_table.write_csv(sys.stdout, rows)
        else:
            with output.open("w", newline="", encoding="utf-8") as handle:
                count = report_table.write_csv(handle, rows)
    err.print(f"{name}: {count} cells" + (f" written to {output}" if output else ""))


@reports_app.command("evaluate")
def reports_evaluate(
    contract: Annotated[str, typer.Option(help="contracts/... or the contract id")],
    period_start: Annotated[str, typer.Option(help="e.g. 2025-01-01")],
    period_end: Annotated[str, typer.Option(help="e.g. 2026-01-01 (exclusive)")],
    report: Annotated[str, typer.Option(help="reports/... to score against")] = "",
) -> None:
    """What the contract pays for the period, every amount with its formula and inputs."""
    with connected() as client:
        result = client.outcomes.evaluate_contract(
            contract, period_start, period_end, report=report
        )
        sys.stdout.write(json.dumps(as_dict(result), ensure_ascii=False) + "\n")


@people_app.command("lookup")
def people_lookup(
    users: Annotated[
        list[str], typer.Argument(help="Keycloak user ids, e.g. a referral's referrer")
    ],
    as_json: JsonOption = None,
) -> None:
    """Display name, roles and organisation of each user id you may see (others are left out)."""
    with connected() as client:
        found = client.identity.lookup_people(users)
        emit(
            iter(found.values()),
            [
                ("user", "user"),
                ("name", "display_name"),
                ("organisation", "organisation_display_name"),
            ],
            as_json,
        )


def main() -> None:
    app()


_ = outcomes_pb2  # the enums the help texts name live there

if __name__ == "__main__":
    main()

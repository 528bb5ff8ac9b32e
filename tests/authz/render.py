"""Writes docs/authorization.md from the authorization table, so that the two cannot drift:
``.venv/bin/python -m tests.authz.render`` (a test fails when the file is not current)."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from .personas import PERSONAS
from .prose import CALLS, INTRO, RULES
from .table import CATEGORIES, SERVICE_CATEGORIES, Row, load

DOC_FILE = Path(__file__).resolve().parents[2] / "docs" / "authorization.md"
HEADER = ("caller", "relationship", "consent", "tenant", "patient", "case", "expected", "sees")


def _cell(value: str) -> str:
    return value.replace("|", "\\|") if value else ""


def _personas() -> str:
    lines = [
        "| caller | who | role | organisation (type) | care group |",
        "|---|---|---|---|---|",
    ]
    for p in PERSONAS.values():
        who = p.username or p.client
        if p.acts_for:
            who += f" for {p.acts_for}"
        org = f"{p.organisation} ({p.organisation_type})" if p.organisation else "-"
        lines.append(f"| `{p.key}` | {p.label}: {who} | {p.role} | {org} | {p.care_group} |")
    return "\n".join(lines)


def _category(rpc: str) -> str:
    return CATEGORIES.get(rpc) or SERVICE_CATEGORIES[rpc.split(".", 1)[0]]


def render(rows: list[Row]) -> str:
    rpcs = list(dict.fromkeys(r.rpc for r in rows))
    per_service = Counter(r.service for r in rows)
    out = [
        INTRO.strip(),
        "",
        f"The table has **{len(rows)} rows** over **{len(rpcs)} RPCs** ("
        + ", ".join(f"{svc} {n}" for svc, n in per_service.items())
        + ").",
        "",
        "## Callers",
        "",
        _personas(),
        "",
        RULES.strip(),
        "",
        "## The table, RPC by RPC",
        "",
    ]
    for rpc in rpcs:
        mine = [r for r in rows if r.rpc == rpc]
        out += [f"### {rpc}", "", f"Data category: {_category(rpc)}. {CALLS.get(rpc, '')}".rstrip()]
        out += ["", "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
        for r in mine:
            cells = [
                f"`{r.caller}`",
                r.relationship,
                r.consent,
                r.tenant,
                r.patient,
                r.case,
                f"**{r.expected}**"
                if r.expected in ("OK",) or r.expected.startswith("PERMIT")
                else r.expected,
                r.sees,
            ]
            out.append("| " + " | ".join(_cell(c) for c in cells) + " |")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def main() -> None:
    DOC_FILE.write_text(render(load()), encoding="utf-8")
    sys.stdout.write(f"wrote {DOC_FILE}\n")


if __name__ == "__main__":
    main()

"""The English catalogue (translations/en/LC_MESSAGES/messages.po; Dutch is the source
language): compiled at start into a folder of the process's own, so the package stays
read-only and no compiled file is kept in the repository."""

from __future__ import annotations

import tempfile
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

SOURCE = Path(__file__).resolve().parent / "translations"


def compiled_translations() -> str:
    """A folder with every catalogue of SOURCE compiled (<lang>/LC_MESSAGES/messages.mo)."""
    target = Path(tempfile.mkdtemp(prefix="carenet-web-translations-"))
    for po in SOURCE.glob("*/LC_MESSAGES/messages.po"):
        mo = target / po.relative_to(SOURCE).with_suffix(".mo")
        mo.parent.mkdir(parents=True, exist_ok=True)
        with po.open("rb") as source:
            catalog = read_po(source)
        with mo.open("wb") as out:
            write_mo(out, catalog)
    return str(target)

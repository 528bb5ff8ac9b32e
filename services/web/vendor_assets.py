"""Copy the front-end assets the pages use from node_modules into src/web/static/vendor/
(git-ignored): the Utrecht component CSS and the NL Design System example theme (both
EUPL-1.2) and Noto Sans 400/700 (SIL OFL 1.1). Run by ``make install`` after ``npm ci``."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODULES = HERE / "node_modules"
VENDOR = HERE / "src" / "web" / "static" / "vendor"

FILES = {
    "@utrecht/component-library-css/dist/index.css": "utrecht/index.css",
    "@utrecht/component-library-css/LICENSE.md": "utrecht/LICENSE.md",
    "@nl-design-system-unstable/voorbeeld-design-tokens/dist/theme.css": "voorbeeld/theme.css",
    "@fontsource/noto-sans/400.css": "noto-sans/400.css",
    "@fontsource/noto-sans/700.css": "noto-sans/700.css",
    "@nl-design-system-unstable/voorbeeld-design-tokens/LICENSE.md": "voorbeeld/LICENSE.md",
    "@fontsource/noto-sans/LICENSE": "noto-sans/LICENSE",
}


def main() -> None:
    if not MODULES.is_dir():
        sys.exit(f"{MODULES} is missing: run npm ci in {HERE} first")
    for source, target in FILES.items():
        src = MODULES / source
        if not src.exists():
            continue  # licence files vary in name between packages
        dst = VENDOR / target
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
    fonts = VENDOR / "noto-sans" / "files"
    fonts.mkdir(parents=True, exist_ok=True)
    for font in (MODULES / "@fontsource/noto-sans/files").glob("noto-sans-*-[47]00-normal.woff*"):
        shutil.copyfile(font, fonts / font.name)
    print(f"vendored assets into {VENDOR}")


if __name__ == "__main__":
    main()

"""The shipped UI files hang together: every module is in index.html's token import map (off
loopback a module missing there fails to load), every import names a file that exists, and the
files are installed with the package."""
from __future__ import annotations

import re
from pathlib import Path

STATIC = Path(__file__).resolve().parents[2] / "src" / "nniray" / "web" / "static"
JS = STATIC / "js"


def test_every_module_is_in_the_token_import_map():
    html = (STATIC / "index.html").read_text()
    listed = set(re.search(r"var modules = \[([^\]]*)\]", html).group(1).replace("'", "").replace(" ", "").split(","))
    shipped = {p.stem for p in JS.glob("*.js")}
    assert listed == shipped


def test_every_import_names_a_shipped_module():
    for path in JS.glob("*.js"):
        for spec in re.findall(r"""^\s*import\s[^'"]*['"]([^'"]+)['"]""", path.read_text(), re.M):
            assert spec.startswith("./"), f"{path.name} imports {spec!r}: only relative imports of our own files"
            assert (JS / spec[2:]).is_file(), f"{path.name} imports {spec}, which does not exist"


def test_the_ui_files_are_package_data():
    setup = (Path(__file__).resolve().parents[2] / "setup.py").read_text()
    for pattern in ("web/static/*", "web/static/js/*"):
        assert f'"{pattern}"' in setup

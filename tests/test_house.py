"""The house's rules that import-linter and ruff cannot state, checked on the source (docs/ARCHITECTURE.md).

- pages are thin (at most 150 lines) and never import each other; no module of lora_app or lora_core is over 400;
- every use of Streamlit's private runtime lives in lora_app/server;
- no private name (``_x``) of the project is imported across modules;
- importing lora_app.echo or lora_core.lora does no hidden work: no streamlit, plotly or pandas;
- every noqa names its rule and says why, beside it;
- docs/ARCHITECTURE.md names every module of lora_app and lora_core.
"""
from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGE_MAX, MODULE_MAX = 150, 400
PACKAGES = ("lora_app", "lora_core")


def project_files(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, names) of every import in a file, relative imports resolved against its package."""
    tree = ast.parse(path.read_text())
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, module] if module else base)
            out.append((module, [alias.name for alias in node.names]))
    return out


def test_pages_are_thin_and_modules_small():
    long_pages = {p.name: n for p in project_files("pages") if (n := len(p.read_text().splitlines())) > PAGE_MAX}
    assert not long_pages, f"pages over {PAGE_MAX} lines: {long_pages}"
    long = {str(p.relative_to(ROOT)): n for p in project_files(*PACKAGES)
            if (n := len(p.read_text().splitlines())) > MODULE_MAX}
    assert not long, f"modules over {MODULE_MAX} lines: {long}"


def test_pages_do_not_import_each_other():
    """pages/ is a folder of scripts, not a package, so import-linter cannot see it: checked here."""
    for page in project_files("pages"):
        for module, _ in imports(page):
            assert not module.startswith("pages"), f"{page.name} imports {module}"


def test_streamlits_private_runtime_is_used_only_in_server():
    private = ("streamlit.runtime", "streamlit.web", "streamlit.proto", "streamlit.elements.lib")
    files = [*project_files(*PACKAGES, "pages"), ROOT / "app.py"]
    outside = [f"{p.relative_to(ROOT)}: {module}" for p in files for module, _ in imports(p)
               if module.startswith(private) and "lora_app/server/" not in p.as_posix()]
    assert not outside, "Streamlit's private runtime outside lora_app/server:\n" + "\n".join(outside)


def test_no_private_name_crosses_a_module():
    files = [*project_files(*PACKAGES, "pages"), ROOT / "app.py"]
    crossing = [f"{p.relative_to(ROOT)}: {module}.{name}" for p in files for module, names in imports(p)
                if module.startswith(PACKAGES) for name in names if name.startswith("_") and not name.startswith("__")]
    assert not crossing, "private names imported across modules:\n" + "\n".join(crossing)


@pytest.mark.parametrize("module", ["lora_app.echo", "lora_core.lora", "lora_app.server.env"])
def test_importing_does_no_hidden_work(module):
    code = f"import sys, {module}; print(sorted(m for m in ('streamlit', 'plotly', 'pandas') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]", f"import {module} loaded {out.stdout.strip()}"


NOQA = re.compile(r"#\s*noqa\b(?P<rest>.*)$")
REASON = re.compile(r":\s*[A-Z]+\d+(?:\s*,\s*[A-Z]+\d+)*\s*(?:\(|-|—|:)\s*\S")


def test_every_noqa_names_its_rule_and_says_why():
    files = [*project_files(*PACKAGES, "pages", "tests", "bench", "scripts", "deploy"), ROOT / "app.py"]
    bare = [f"{p.relative_to(ROOT)}:{i}: {line.strip()}" for p in files
            for i, line in enumerate(p.read_text().splitlines(), 1)
            if (m := NOQA.search(line)) and not REASON.match(m.group("rest"))]
    assert not bare, "a noqa without its reason beside it:\n" + "\n".join(bare)


def test_the_architecture_map_names_every_module():
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    missing = [str(p.relative_to(ROOT)) for p in project_files(*PACKAGES)
               if p.name != "__init__.py" and str(p.relative_to(ROOT)) not in text]
    folders = sorted({str(p.parent.relative_to(ROOT)) + "/" for p in project_files(*PACKAGES)})
    missing += [f for f in folders if f not in text]
    assert not missing, "docs/ARCHITECTURE.md does not name:\n" + "\n".join(missing)

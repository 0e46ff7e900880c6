"""The layout's rules, read from the code: which part may import which, who alone imports
modal and the simulators, no import circles, three top-level names, small folders and modules.
Each rule is also run on a copy of `src/` with a deliberate violation, to show it catches it."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support.layers import ALLOWED, layer_violations, module_cycles, part_of, read_imports

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
MAX_MODULES_PER_FOLDER = 12
MAX_MODULE_LINES = 400


def test_every_module_of_ours_belongs_to_a_part() -> None:
    known, _ = read_imports(SRC)
    assert sorted(m for m in known if part_of(m) is None) == ["orchestrator"]


def test_no_part_imports_a_part_it_may_not() -> None:
    _, imports = read_imports(SRC)
    assert layer_violations(imports) == []


def test_no_modules_import_each_other_in_a_circle() -> None:
    known, imports = read_imports(SRC)
    assert module_cycles(known, imports) == []


def test_the_parts_are_a_one_way_stack() -> None:
    """Each part's allowed imports are parts allowed fewer things: a circle of parts would
    show as a part allowed, through others, to import itself."""
    reach = {part: set(allowed) for part, allowed in ALLOWED.items()}
    changed = True
    while changed:
        changed = False
        for parts in reach.values():
            more = set().union(*(reach[p] for p in parts)) - parts
            if more:
                parts |= more
                changed = True
    assert [part for part, parts in reach.items() if part in parts] == []


def test_no_folder_holds_more_than_twelve_modules_nor_a_module_over_400_lines() -> None:
    folders = {p.parent for p in SRC.rglob("*.py")}
    crowded = {
        str(f.relative_to(SRC)): n
        for f in folders
        if (n := len(list(f.glob("*.py")))) > MAX_MODULES_PER_FOLDER
    }
    long = {
        str(p.relative_to(SRC)): n
        for p in SRC.rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert (crowded, long) == ({}, {})


# --------------------------------------------------------------- the rules catch violations

VIOLATIONS = {
    "entities imports the orchestrator": (
        "entities/status.py",
        "from orchestrator.settings import Settings\n",
        "entities may not import orchestrator.settings",
    ),
    "a module other than worker imports modal": (
        "orchestrator/engine/passes.py",
        "import modal\n",
        "imports modal; only worker.py may",
    ),
    "the engine imports a runtime": (
        "orchestrator/engine/sweeper.py",
        "from orchestrator.runtimes.local import LocalRuntime\n",
        "orchestrator.engine may not import orchestrator.runtimes",
    ),
    "steps import a runtime inside a function": (
        "orchestrator/steps/split.py",
        "def _late() -> None:\n    import orchestrator.runtimes.cloud\n",
        "orchestrator.steps may not import orchestrator.runtimes",
    ),
    "callbacks import a runtime": (
        "orchestrator/callbacks/tokens.py",
        "from orchestrator.runtimes import service\n",
        "orchestrator.callbacks may not import orchestrator.runtimes",
    ),
    "the web app imports a simulator": (
        "orchestrator/web/app.py",
        "from orchestrator.providers.simulators.zenrows import ZenrowsSimulator\n",
        "only runtimes may",
    ),
    "the engine imports a runtime relatively": (
        "orchestrator/engine/passes.py",
        "from ..runtimes import local\n",
        "orchestrator.engine may not import orchestrator.runtimes",
    ),
    "the web app loads a simulator by name": (
        "orchestrator/web/play_routes.py",
        "import importlib\nimportlib.import_module('orchestrator.providers.simulators.clay')\n",
        "only runtimes may",
    ),
    "state reaches a runtime through the package": (
        "orchestrator/state/progress.py",
        "import orchestrator\n_ = orchestrator.runtimes.local.LocalRuntime\n",
        "orchestrator.state may not import orchestrator.runtimes",
    ),
    "the engine loads modal with __import__": (
        "orchestrator/engine/sweeper.py",
        "_modal = __import__('modal')\n",
        "imports modal; only worker.py may",
    ),
    "a lower part imports a higher one": (
        "orchestrator/state/registry.py",
        "from orchestrator.engine.dispatch import StepCall\n",
        "orchestrator.state may not import orchestrator.engine",
    ),
}


def _copy_with(tmp_path: Path, relative: str, added: str) -> Path:
    src = tmp_path / "src"
    shutil.copytree(SRC, src, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    target = src / relative
    target.write_text(target.read_text(encoding="utf-8") + "\n" + added, encoding="utf-8")
    return src


@pytest.mark.parametrize("case", sorted(VIOLATIONS))
def test_the_layer_rules_catch_a_deliberate_violation(tmp_path: Path, case: str) -> None:
    relative, added, expected = VIOLATIONS[case]
    _, imports = read_imports(_copy_with(tmp_path, relative, added))
    found = layer_violations(imports)
    assert any(expected in line for line in found), found


def test_the_circle_rule_catches_two_modules_importing_each_other(tmp_path: Path) -> None:
    src = _copy_with(
        tmp_path, "orchestrator/engine/dispatch.py", "from orchestrator.engine import passes\n"
    )
    known, imports = read_imports(src)
    assert ["orchestrator.engine.dispatch", "orchestrator.engine.passes"] in module_cycles(
        known, imports
    )


# ------------------------------------------------------------------- what an install holds


@pytest.mark.slow
def test_an_install_puts_exactly_three_top_level_names_into_site_packages(
    tmp_path: Path,
) -> None:
    """A wheel built from the checkout: its top-level names and that it ships the .sql files."""
    out = tmp_path / "wheel"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )  # fmt: skip
    import zipfile

    (wheel,) = out.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top_level == {"entities", "orchestrator", "worker.py"}
    (top_level_txt,) = [n for n in names if n.endswith(".dist-info/top_level.txt")]
    listed = zipfile.ZipFile(wheel).read(top_level_txt).decode().split()
    assert sorted(listed) == ["entities", "orchestrator", "worker"]
    assert "orchestrator/db/sql/entities.sql" in names
    # An installed copy migrates and checks its databases without a checkout beside it.
    assert "orchestrator/db/migrations/hq/20261123000100_upload_pipeline.sql" in names
    assert any(n.startswith("orchestrator/db/migrations/workspace/") for n in names)
    assert "entities/freemail_domains.txt" in names


def _documented_rules() -> dict[str, frozenset[str]]:
    """The "may import" column of docs/architecture.md's table of parts, and worker.py's line."""
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    table = doc[doc.index("| part | holds | may import |") :].split("\n\n")[0]
    names = {"entities": "entities"}

    def full(name: str) -> str:
        return names.get(name, f"orchestrator.{name}")

    rules = {"entities": frozenset[str]()}
    for line in table.splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        allowed = re.findall(r"`([a-z_]+)`", cells[-1])
        rules[full(cells[0].strip("`"))] = frozenset(full(n) for n in allowed)
    worker = re.search(r"`worker\.py` may import (.+?):", doc, re.S)
    assert worker is not None
    rules["worker"] = frozenset(full(n) for n in re.findall(r"`([a-z_]+)`", worker.group(1)))
    return rules


def test_the_architecture_page_states_the_rules_the_test_enforces() -> None:
    assert _documented_rules() == ALLOWED

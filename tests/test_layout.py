"""The code's layout holds: imports go one way between apps, no module cycles.

`recipients` ← `studies` ← `sharing` ← `demo`: an app imports only from those to
its left (ARCHITECTURE.md). Inside the project no module imports, even lazily in a
function, a module that imports it back through any chain.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APP_ORDER = ["recipients", "studies", "sharing", "demo"]
PACKAGES = ["pacsshare", *APP_ORDER]


def module_name(path, root):
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_graph(root, packages):
    """Return {module: {imported project module, ...}} for every module found."""
    modules = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            modules[module_name(path, root)] = path
    graph = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        graph[name] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            for target in _targets(node, name, is_package):
                # "from a.b import c" names module a.b.c when there is one.
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def _targets(node, module, is_package):
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = node.module or ""
    if node.level:
        package = module.split(".") if is_package else module.split(".")[:-1]
        package = package[: len(package) - (node.level - 1)]
        base = ".".join([*package, base] if base else package)
    return [f"{base}.{alias.name}" for alias in node.names]


def cycles(graph):
    """Return the import cycles of the graph, each as a list of modules."""
    found, state = [], {}

    def visit(module, stack):
        state[module] = "open"
        stack.append(module)
        for target in sorted(graph.get(module, ())):
            if state.get(target) == "open":
                found.append([*stack[stack.index(target) :], target])
            elif target not in state:
                visit(target, stack)
        stack.pop()
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [])
    return found


def order_violations(graph, order=APP_ORDER):
    """Return (module, imported) pairs where an app imports one to its right."""
    rank = {app: index for index, app in enumerate(order)}
    wrong = []
    for module, targets in sorted(graph.items()):
        app = module.split(".")[0]
        if app not in rank:
            continue
        for target in sorted(targets):
            other = target.split(".")[0]
            if other in rank and rank[other] > rank[app]:
                wrong.append((module, target))
    return wrong


def test_no_module_imports_itself_back():
    assert cycles(import_graph(ROOT, PACKAGES)) == []


def test_every_app_imports_only_the_apps_to_its_left():
    assert order_violations(import_graph(ROOT, PACKAGES)) == []


def test_the_graph_sees_the_sharing_rooms():
    graph = import_graph(ROOT, PACKAGES)

    assert "sharing.outbox.queue" in graph["sharing.wizard.services"]
    assert "sharing.access.guard" in graph["sharing.wizard.views"]


@pytest.fixture
def tree(tmp_path):
    def write(files):
        for name, text in files.items():
            path = tmp_path / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        return tmp_path

    return write


def test_it_finds_a_cycle_hidden_in_a_function(tree):
    root = tree(
        {
            "app/__init__.py": "",
            "app/a.py": "from .b import thing\n",
            "app/b.py": "def f():\n    from app import a\n",
        }
    )

    assert cycles(import_graph(root, ["app"])) == [["app.a", "app.b", "app.a"]]


def test_it_finds_an_import_against_the_app_order(tree):
    root = tree(
        {
            "low/__init__.py": "",
            "low/models.py": "from high.rooms import views\n",
            "high/__init__.py": "",
            "high/rooms/__init__.py": "",
            "high/rooms/views.py": "from ...low import models\n",
        }
    )
    graph = import_graph(root, ["low", "high"])

    assert order_violations(graph, order=["low", "high"]) == [
        ("low.models", "high.rooms.views")
    ]
    assert "low.models" in graph["high.rooms.views"]

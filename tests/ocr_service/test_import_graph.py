"""The queue plumbing is its own package and the task modules depend on it one way only.

Every module under ``ocr_service/`` is parsed (no import runs) and every import statement in it,
module-level and inside functions alike, becomes an edge: an import placed in a function only
to dodge a circular import is still a circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[2] / "ocr_service"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(PACKAGE_DIR.rglob("*.py"))}


def _import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".") if is_package else name.split(".")[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                # ``from pkg import sub`` imports the module pkg.sub; ``from mod import name`` imports mod
                subs = [f"{source}.{alias.name}" for alias in node.names if f"{source}.{alias.name}" in modules]
                targets = subs if subs else [source]
            for target in targets:
                if target in modules and target != name:
                    graph[name].add(target)
    return graph


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    stack = [start]
    while stack:
        for nxt in graph.get(stack.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def _circle(graph: dict[str, set[str]], a: str, b: str) -> bool:
    return b in _reachable(graph, a) and a in _reachable(graph, b)


def test_the_queue_plumbing_is_its_own_package():
    modules = _modules()
    assert "ocr_service.queue.celery_app" in modules
    assert "ocr_service.queue.dispatch" in modules
    jobs = {path.name for path in (PACKAGE_DIR / "jobs").glob("*.py")}
    assert "celery_app.py" not in jobs
    assert "dispatch.py" not in jobs


def test_no_circle_between_the_scan_task_and_the_queue_package():
    graph = _import_graph()
    tasks = "ocr_service.verification.tasks"
    assert tasks in graph
    queue_modules = [name for name in graph if name == "ocr_service.queue" or name.startswith("ocr_service.queue.")]
    assert queue_modules
    circles = [name for name in queue_modules if _circle(graph, tasks, name)]
    assert circles == []


def test_no_circle_between_reverify_and_its_task():
    graph = _import_graph()
    assert "ocr_service.jobs.reverify" in graph
    assert "ocr_service.jobs.reverify_tasks" in graph
    assert not _circle(graph, "ocr_service.jobs.reverify", "ocr_service.jobs.reverify_tasks")


def test_the_queue_package_imports_no_verification_or_jobs_module():
    graph = _import_graph()
    for name, targets in graph.items():
        if name == "ocr_service.queue" or name.startswith("ocr_service.queue."):
            bad = sorted(t for t in targets if t.startswith(("ocr_service.verification", "ocr_service.jobs")))
            assert bad == [], name


def test_the_graph_sees_function_level_imports():
    # reverify imports the review service only inside a function; the graph must still see it
    graph = _import_graph()
    assert "ocr_service.review.service" in graph["ocr_service.jobs.reverify"]

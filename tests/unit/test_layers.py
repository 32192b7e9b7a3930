"""The layers of docs/architecture.md, checked on every import in the package: dependencies point one way."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "worker"
LEAVES = ("worker.wire", "worker.reasons", "worker.errors", "worker.settings", "worker.tokens")
FEATURES = ("worker.payouts", "worker.review", "worker.settlement", "worker.journey")
#: What each feature may import of another feature: the payout is review's and settlement's input.
FEATURE_IMPORTS = {
    "worker.review": ("worker.payouts.records", "worker.payouts.rules"),
    "worker.settlement": ("worker.payouts.records",),
    # A journey is a view of what the others keep: it reads their tables, and writes nothing.
    "worker.journey": (
        "worker.payouts.rules",
        "worker.review.tables",
        "worker.settlement.ledger",
    ),
}


def imports() -> list[tuple[str, str]]:
    """(importing module, imported module) for every `worker.*` import in the package."""
    found = []
    for path in PACKAGE.rglob("*.py"):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("worker"):
                found += [(module, node.module)] + [(module, f"{node.module}.{a.name}") for a in node.names]
            elif isinstance(node, ast.Import):
                found += [(module, a.name) for a in node.names if a.name.startswith("worker")]
    return found


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_the_runtime_and_the_leaves_import_no_feature_and_not_main() -> None:
    low = ("worker.runtime", *LEAVES)
    wrong = [
        (a, b)
        for a, b in imports()
        if any(within(a, p) for p in low) and any(within(b, p) for p in (*FEATURES, "worker.main"))
    ]
    assert not wrong, f"the runtime and the leaves must not import features or main: {wrong}"


def test_the_leaves_import_only_leaves() -> None:
    wrong = [
        (a, b)
        for a, b in imports()
        if a in LEAVES and not any(within(b, leaf) for leaf in LEAVES) and b != "worker"
    ]
    assert not wrong, f"a leaf imports from above: {wrong}"


def test_a_feature_imports_of_another_only_its_records_and_rules() -> None:
    wrong = []
    for a, b in imports():
        mine = next((f for f in FEATURES if within(a, f)), None)
        theirs = next((f for f in FEATURES if within(b, f)), None)
        allowed = FEATURE_IMPORTS.get(mine or "", ())
        if mine and theirs and mine != theirs and not any(within(b, ok) for ok in allowed):
            wrong.append((a, b))
    assert not wrong, f"a feature reaches into another: {wrong}"


def test_nothing_but_main_and_the_entry_point_imports_main() -> None:
    wrong = [
        (a, b)
        for a, b in imports()
        if within(b, "worker.main") and a not in ("worker.__main__", "worker.main")
    ]
    assert not wrong, wrong

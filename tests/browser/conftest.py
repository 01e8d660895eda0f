"""Browser tests: the operator console in a real Chromium, driven by Playwright, on a real
`gateway serve` process.

The browser is the system's Chromium (GATEWAY_CHROMIUM, else /usr/bin/chromium, else `chromium`
on PATH); Playwright's own browser download is never used. Without one the tests are skipped
with that reason (`make test-browser` installs it from the OS packages, then runs them).
Screenshots go to GATEWAY_TEST_OUTPUT, else test-output/browser/ under the repository.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO_ROOT

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
_HERE = Path(__file__).resolve().parent
_USED: list[Path] = []  # the screenshot directory, once a test has written to it


def chromium() -> tuple[str | None, str]:
    """The Chromium to drive, or None and why there is none."""
    named = os.environ.get("GATEWAY_CHROMIUM")
    if named:
        if os.access(named, os.X_OK):
            return named, ""
        return None, f"GATEWAY_CHROMIUM={named} is not an executable"
    if os.access("/usr/bin/chromium", os.X_OK):
        return "/usr/bin/chromium", ""
    found = shutil.which("chromium")
    if found:
        return found, ""
    return None, (
        "no Chromium found (GATEWAY_CHROMIUM, /usr/bin/chromium, chromium on PATH): "
        "`make test-browser` installs it from the OS packages and runs these tests"
    )


def _missing() -> str:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed (make install installs the locked dependencies)"
    return chromium()[1]


def output_dir() -> Path:
    return Path(os.environ.get("GATEWAY_TEST_OUTPUT") or REPO_ROOT / "test-output") / "browser"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    mine = [item for item in items if _HERE in Path(str(item.fspath)).resolve().parents]
    if not mine:
        return
    why = _missing()
    if why:
        for item in mine:
            item.add_marker(pytest.mark.skip(reason=f"browser tests skipped: {why}"))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for shots in _USED:
        terminalreporter.write_line(f"browser screenshots: {shots}")


@pytest.fixture(scope="session")
def screenshots() -> Path:
    directory = output_dir()
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("*.png"):
        old.unlink()
    _USED.append(directory)
    return directory


# Module-scoped, not session-scoped: while Playwright's sync API is open its event loop counts
# as running in this thread, and pytest-asyncio's tests after these could not start theirs.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    path, why = chromium()
    assert path, why
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    opened = context.new_page()
    opened.set_default_timeout(30_000)
    yield opened
    context.close()

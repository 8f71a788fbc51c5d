"""The browser tests' Playwright (the pytest-playwright plugin's fixtures, adjusted).

- Debian's chromium drives them (`make browser` installs it); Playwright's own browser
  download is never used.
- One Playwright driver and one browser per module, not per session: while the driver runs,
  its event loop is the thread's running loop, and Django refuses the ORM there. The browser
  modules allow it (DJANGO_ALLOW_ASYNC_UNSAFE) for as long as their driver runs, which is safe
  because nothing runs concurrently: the loop turns only inside a Playwright call, in this
  thread, and the test's queries run between those calls. The rest of the suite never sees
  the variable nor a running loop.
- `step("what")` takes a screenshot of the page; a failed test keeps its steps' screenshots in
  test-results/<test>/steps/ (pytest-playwright's output folder, `--output`), next to the
  plugin's screenshot of the page at the failure (`--screenshot=only-on-failure`, pyproject.toml).
"""

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright
from slugify import slugify

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    report = yield
    if report.when == "call":
        item.stash[FAILED] = report.failed
    return report


@pytest.fixture(scope="module", autouse=True)
def _orm_between_playwright_calls() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": ["--no-sandbox"]}


@pytest.fixture(scope="module")
def browser(playwright: Playwright, browser_type_launch_args: dict[str, Any]) -> Iterator[Browser]:
    browser = playwright.chromium.launch(**browser_type_launch_args)
    yield browser
    browser.close()


@pytest.fixture
def browser_context_args() -> dict[str, Any]:
    """What each test's browser context is opened with (a module overrides it to add its base_url)."""
    return {}


@pytest.fixture
def step(page: Page, output_path: str, request: pytest.FixtureRequest) -> Iterator[Callable[[str], None]]:
    """step("what was done"): a screenshot of the page now, written out only if the test fails."""
    shots: list[tuple[str, bytes]] = []

    def take(what: str) -> None:
        shots.append((f"{len(shots) + 1:02d}-{slugify(what)}.png", page.screenshot(full_page=True)))

    yield take
    if request.node.stash.get(FAILED, True):
        folder = Path(output_path) / "steps"
        folder.mkdir(parents=True, exist_ok=True)
        for name, png in shots:
            (folder / name).write_bytes(png)


def log_in(page: Page, base_url: str, username: str, password: str) -> None:
    """Through the admin's login form, as a person does."""
    page.goto(f"{base_url}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    expect(page.locator("#user-tools")).to_be_visible()

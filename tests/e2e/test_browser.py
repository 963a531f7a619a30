"""The dashboard in real headless Chromium (Debian's ``chromium``, driven by Playwright).

The app runs under waitress (the production server) on a free loopback port in a thread, the
browser gets a fresh profile, and every wait is one of Playwright's own waits on a condition.
A failing step leaves a screenshot under ``test-artifacts/``.

With ``SETTLEGUARD_UPDATE_SCREENSHOT=1`` the overview of a full demo run is saved as
``docs/img/dashboard.png`` (the README's picture).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from settleguard.collector.enrollment.keys import init_keys
from settleguard.collector.web.app import create_app
from settleguard.collector.web.db import close_store, get_store
from settleguard.collector.web.users import add_user

from settleguard.demo.services import start_web
from tests.collector.web.scenario import ACCOUNT, MERCHANT, build_world

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
SCREENSHOT = ROOT / "docs" / "img" / "dashboard.png"
PASSWORD = "correct horse battery"
TIMEOUT_MS = 15_000

sync_api = pytest.importorskip(
    "playwright.sync_api",
    reason="the browser tests need Playwright's Python package: pip install -e '.[dev]'",
)
pytestmark = pytest.mark.skipif(
    not (os.access(CHROMIUM, os.X_OK) or shutil.which("chromium")),
    reason="the browser tests need Debian's chromium: sudo apt-get install chromium"
    " (make test installs it when run as root); never 'playwright install'",
)


@pytest.fixture
def browser_context(tmp_path: Path) -> Iterator[Any]:
    """A Chromium with a fresh profile in ``tmp_path``, 1280×800, English."""
    executable = CHROMIUM if os.access(CHROMIUM, os.X_OK) else shutil.which("chromium")
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=executable, headless=True, args=ARGS,
            viewport={"width": 1280, "height": 800}, locale="en-US",
        )  # fmt: skip
        context.set_default_timeout(TIMEOUT_MS)
        try:
            yield context
        finally:
            context.close()


@contextmanager
def screenshot_on_failure(page: Any, name: str) -> Iterator[None]:
    """Keep what the browser showed when a step failed, under ``test-artifacts/``."""
    try:
        yield
    except BaseException:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        (ARTIFACTS / f"{name}.html").write_text(page.content(), encoding="utf-8")
        raise


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, bytes]]:
    """The collector under waitress on a free port: an operator and a viewer, keys, a merchant with two
    batches; yields the base URL and a statement that pays only the first batch."""
    app = create_app(
        {"INSTANCE_PATH": str(tmp_path / "instance"),
         "DATABASE_URL": f"sqlite:///{tmp_path / 'collector.db'}"}
    )  # fmt: skip
    store = get_store(app)
    store.migrate()
    keys, _ = init_keys(Path(app.config["KEYS_DIR"]))
    add_user(store, "olga", "operator", PASSWORD, actor="test")
    add_user(store, "vic", "viewer", PASSWORD, actor="test")
    statement = build_world(store, keys)
    web = start_web(app)
    try:
        yield web.url, statement
    finally:
        web.stop()
        close_store(app)


def sign_in(page: Any, url: str, username: str, password: str) -> None:
    page.goto(f"{url}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    sync_api.expect(page.locator("header")).to_contain_text(username)


def test_upload_find_gap_acknowledge_audit(
    browser_context: Any, served: tuple[str, bytes], tmp_path: Path
) -> None:
    url, statement = served
    upload = tmp_path / "bank.csv"
    upload.write_bytes(statement)
    page = browser_context.new_page()
    expect = sync_api.expect
    with screenshot_on_failure(page, "browser-upload-acknowledge"):
        sign_in(page, url, "olga", PASSWORD)
        expect(page.locator("h1")).to_have_text("Overview")

        page.click("header >> text=Imports")
        page.set_input_files("#upload input[type=file]", str(upload))
        page.fill("#upload input[name=account]", ACCOUNT)
        page.click("#upload button[type=submit]")
        expect(page.locator("#import-result")).to_contain_text("3 credits")
        expect(page.locator("#import-result")).to_contain_text("reconciled 1 merchants")

        page.click("header >> text=Merchants")
        page.fill("input[name=q]", MERCHANT)
        page.press("input[name=q]", "Enter")
        page.click(f"a:text-is('{MERCHANT}')")
        expect(page).to_have_url(re.compile(f"/merchants/{MERCHANT}$"))
        gap_row = page.locator("tr", has_text="MISSING").filter(has=page.locator("button"))
        expect(gap_row.first).to_contain_text("800.00")
        gap_row.first.locator("button", has_text="Acknowledge").click()
        expect(page.locator(".flash")).to_contain_text("Done.")
        expect(page.locator("body")).to_contain_text("acknowledged")

        page.click("header >> text=Audit log")
        line = page.locator("tr", has_text="gap.acknowledge")
        expect(line).to_have_count(1)
        expect(line).to_contain_text("olga")
        expect(line).to_contain_text('"acknowledged"')


def test_viewer_sees_no_controls_and_bad_password_is_refused(
    browser_context: Any, served: tuple[str, bytes]
) -> None:
    url, _ = served
    page = browser_context.new_page()
    expect = sync_api.expect
    with screenshot_on_failure(page, "browser-viewer"):
        page.goto(f"{url}/login")
        page.fill("input[name=username]", "olga")
        page.fill("input[name=password]", "wrong")
        page.click("button[type=submit]")
        expect(page.locator("body")).to_contain_text("Invalid username or password.")
        expect(page.locator("header")).to_have_count(0)

        sign_in(page, url, "vic", PASSWORD)
        response = page.goto(f"{url}/merchants/{MERCHANT}")
        assert response is not None and response.status == 200
        # no inline script may run on any page, and a viewer is offered no controls
        assert "script-src 'none'" in response.headers["content-security-policy"]
        expect(page.locator("h1")).to_contain_text(MERCHANT)
        expect(page.locator("main form[method=post]")).to_have_count(0)
        page.goto(f"{url}/imports")
        expect(page.locator("input[type=file]")).to_have_count(0)


def test_overview_screenshot_of_the_demo(browser_context: Any, tmp_path: Path) -> None:
    """The overview after a demo run; saved for the README with SETTLEGUARD_UPDATE_SCREENSHOT=1."""
    from settleguard.collector.enrollment.broker import mosquitto_binary

    from settleguard.demo.run import DemoOptions, run_demo

    update = os.environ.get("SETTLEGUARD_UPDATE_SCREENSHOT") == "1"
    size = {} if update else {"terminals": 4, "days": 6}  # the full demo only for the picture
    options = DemoOptions(
        workdir=tmp_path / "demo", seed=7,
        broker=None if mosquitto_binary() is not None else "embedded", **size,
    )  # fmt: skip
    result, demo = run_demo(options, print, keep_running=True)
    try:
        assert result.dashboard and result.login
        page = browser_context.new_page()
        with screenshot_on_failure(page, "browser-demo-overview"):
            sign_in(page, result.dashboard, *result.login)
            sync_api.expect(page.locator("#money-at-risk")).not_to_have_text("0.00")
            target = SCREENSHOT if update else tmp_path / "dashboard.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            png = page.screenshot(path=str(target))
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
        assert (width, height) == (1280, 800)
    finally:
        demo.close()


@pytest.mark.parametrize(
    ("lang", "words"),
    [
        (
            "en",
            {
                "queue": "Gap queue",
                "category": "Missing",
                "age": "days",
                "search": "Reference",
                "not_due": "Not due yet",
                "agents": "Agents",
            },
        ),
        (
            "zh-CN",
            {
                "queue": "差异队列",
                "category": "未到账",
                "age": "天",
                "search": "参考号",
                "not_due": "未到期",
                "agents": "采集终端",
            },
        ),
    ],
)
def test_gap_pages_in_both_languages(
    browser_context: Any, served: tuple[str, bytes], tmp_path: Path, lang: str,
    words: dict[str, str],
) -> None:  # fmt: skip
    """The queue, the search by the SMS reference, the gap's own page and the merchant page,
    in English and Chinese; each screenshot is checked by the text the page shows."""
    url, statement = served
    upload = tmp_path / "bank.csv"
    upload.write_bytes(statement)
    page = browser_context.new_page()
    expect = sync_api.expect
    with screenshot_on_failure(page, f"browser-gaps-{lang}"):
        sign_in(page, url, "olga", PASSWORD)
        page.goto(f"{url}/imports?lang={lang}")
        page.set_input_files("#upload input[type=file]", str(upload))
        page.fill("#upload input[name=account]", ACCOUNT)
        page.click("#upload button[type=submit]")
        expect(page.locator("#import-result")).to_be_visible()

        page.goto(f"{url}/")
        expect(page.locator("#money-at-risk")).to_have_text("¥800.00")
        expect(page.locator("#money-at-risk-definition")).to_be_visible()
        expect(page.locator("#not-due-yet")).to_contain_text(words["not_due"])
        expect(page.locator("header")).to_contain_text(words["agents"])
        ticks = page.locator("svg.chart text.y-tick").all_text_contents()
        assert ticks == ["¥0.00", "¥500.00", "¥1,000.00"], ticks  # a money axis, one day of data
        page.screenshot(path=str(tmp_path / f"overview-{lang}.png"), full_page=True)

        page.goto(f"{url}/gaps")
        expect(page.locator("h1")).to_contain_text(words["queue"])
        row = page.locator("table.gaps tr", has_text=words["category"]).first
        expect(row).to_contain_text("¥800.00")
        expect(row).to_contain_text(words["age"])
        reference = row.locator("a.ref").inner_text()
        assert re.fullmatch(r"SG-\d+", reference)
        page.screenshot(path=str(tmp_path / f"queue-{lang}.png"), full_page=True)
        assert "MISSING" not in page.inner_text("main")  # codes stay in the API and CSV

        page.fill("#gap-search input[name=q]", reference)
        expect(page.locator("#gap-search input[name=q]")).to_have_attribute(
            "placeholder", re.compile(words["search"])
        )
        page.press("#gap-search input[name=q]", "Enter")
        expect(page).to_have_url(re.compile(f"/gaps/{reference[3:]}$"))
        expect(page.locator("h1")).to_contain_text(reference)
        expect(page.locator("dl.facts")).to_contain_text("****1234")
        page.screenshot(path=str(tmp_path / f"gap-{lang}.png"), full_page=True)
        text = page.inner_text("main")
        assert "¥800.00" in text and "evidence" not in text and "account_in_force" not in text

        page.goto(f"{url}/merchants/{MERCHANT}")
        expect(page.locator("h1")).to_contain_text(MERCHANT)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 1280, f"the merchant page is {width} px wide"
        page.screenshot(path=str(tmp_path / f"merchant-{lang}.png"), full_page=True)
        main_text = page.inner_text("main")
        assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d(?!:)", main_text)  # local time to the minute
        assert not re.search(r"\d\d:\d\d:\d\d", main_text)  # no seconds or microseconds

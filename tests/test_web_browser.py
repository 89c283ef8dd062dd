"""The web page in a real browser: Playwright drives Debian's Chromium (never Playwright's own download) against a
real uvicorn server whose jobs use the tiny network.  It uploads, starts, sees the step counter advance and the
preview load, cancels, re-runs with changes, opens the result from the gallery and downloads it; the screenshot it
takes is docs/images/web.png when PAINTERLY_SCREENSHOT names that path.  A second test colours a bundled sketch: it
switches the page to sketch mode, sees the form change (colorize's options and defaults, no init), picks a sketch
example, starts, and finds the coloured sketch in the gallery with its ``painterly colorize`` command.

Where the browser or Playwright is missing the test skips, except under CI (``CI=true``), where it fails.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import make_image

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
#: Flags that keep Chromium from reaching for the network (closed here) and let it run as root.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]  # fmt: skip


def _missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI must run the browser test: .ci/run installs chromium, make setup playwright)")
    pytest.skip(reason)


@pytest.fixture
def address(tmp_path: Path, weights_file: Path) -> Iterator[str]:
    """A real server (uvicorn in a thread, the worker a process) on a free loopback port."""
    try:
        import uvicorn

        from painterly.web.app import WebServer, create_app
    except ImportError as error:
        _missing(f"the web extra is not installed ({error})")
    from .web_helpers import server_settings

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = WebServer(server_settings(tmp_path / "data", weights_file, port=port))
    config = uvicorn.Config(create_app(server), host="127.0.0.1", port=port, log_level="warning")
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not running.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/"
    running.should_exit = True
    thread.join(60)


def _playwright() -> tuple[Any, Any]:
    """``(expect, sync_playwright)``; skips (fails under CI) where the browser or Playwright is missing."""
    if not Path(CHROMIUM).exists():
        _missing(f"no Chromium at {CHROMIUM} (apt-get install -y chromium)")
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        _missing("playwright is not installed (pip install 'painterly[dev]')")
    return expect, sync_playwright


def test_upload_start_watch_cancel_rerun_and_download(address: str, tmp_path: Path) -> None:
    expect, sync_playwright = _playwright()
    content = make_image(tmp_path / "photo.png", (64, 48), seed=1)
    style = make_image(tmp_path / "art.png", (48, 48), seed=2)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(address)
        expect(page.locator("#worker")).to_have_text("worker: ready", timeout=60_000)
        page.set_input_files("#content", str(content))
        page.set_input_files("#styles", str(style))
        page.fill("#f_size", "64")
        page.fill("#f_start_size", "")
        page.fill("#f_iterations", "5000")
        page.click("text=More settings")  # the advanced settings are folded away
        page.select_option("#f_mixed_precision", "false")
        page.click("#start")
        shown_step = "parseInt((/step (\\d+)/.exec(document.getElementById('stats').textContent) || [0, 0])[1])"
        page.wait_for_function(f"{shown_step} >= 1", timeout=60_000)
        first = int(re.search(r"step (\d+)", page.inner_text("#stats"))[1])
        page.wait_for_function("document.getElementById('preview').naturalWidth > 0", timeout=30_000)
        page.wait_for_function(
            f"parseInt(/step (\\d+)/.exec(document.getElementById('stats').textContent)[1]) > {first}"
        )
        page.locator(".job", has_text="running").get_by_role("button", name="cancel").click()
        expect(page.locator(".job .state")).to_have_text("cancelled", timeout=30_000)
        page.get_by_role("button", name="re-run with changes").click()
        expect(page.locator("#rerun_note")).to_contain_text("re-run of photo.png")
        assert page.input_value("#f_iterations") == "5000"
        page.fill("#f_iterations", "3")
        page.set_input_files("#content", [])
        page.set_input_files("#styles", [])
        page.click("#start")
        page.locator("#gallery figure").first.wait_for(timeout=60_000)
        page.locator("#gallery figure").first.click()
        expect(page.locator("#result")).to_be_visible()
        expect(page.locator("#command")).to_contain_text("painterly photo.png art.png --size 64")
        page.wait_for_function("document.getElementById('after_img').naturalWidth > 0")
        with page.expect_download() as download:
            page.click("#download")
        saved = tmp_path / "download.png"
        download.value.save_as(saved)
        assert saved.stat().st_size > 0 and saved.read_bytes()[:4] == b"\x89PNG"
        assert page.locator("#error").inner_text() == ""
        screenshot = os.environ.get("PAINTERLY_SCREENSHOT")
        if screenshot:
            page.screenshot(path=screenshot, full_page=True)
        browser.close()


def test_sketch_mode_colours_a_bundled_sketch(address: str) -> None:
    expect, sync_playwright = _playwright()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(address)
        expect(page.locator("#worker")).to_have_text("worker: ready", timeout=60_000)
        assert page.input_value("#f_iterations") == "300" and not page.is_visible("#f_fill")
        page.click("text=Colour a sketch")
        expect(page.locator("#content_title")).to_have_text("Sketch")
        expect(page.locator("#f_fill")).to_be_visible()  # colorize's own options appear, with its defaults
        assert page.input_value("#f_iterations") == "200" and page.input_value("#f_style_weight") == "10"
        assert page.get_attribute("#f_min_lightness", "max") == "0.95"
        page.click("text=More settings")
        expect(page.locator("#f_init")).to_be_hidden()  # colorize sets the init itself
        assert "bald eagle" in page.locator("#content_example option").all_inner_texts()  # the sketches, not photos
        assert "chelsea cat" not in page.locator("#content_example option").all_inner_texts()
        page.select_option("#content_example", "bald_eagle")
        page.select_option("#style_example", "starry_night")
        page.fill("#f_size", "64")
        page.fill("#f_start_size", "")
        page.fill("#f_iterations", "3")
        page.select_option("#f_mixed_precision", "false")
        page.select_option("#f_fill", "blur")
        page.click("#start")
        figure = page.locator("#gallery figure", has_text="coloured sketch")
        figure.wait_for(timeout=60_000)
        assert page.locator("#error").inner_text() == ""
        figure.click()
        expect(page.locator("#result")).to_be_visible()
        command = "painterly colorize bald_eagle.png starry_night.jpg --fill blur --size 64"
        expect(page.locator("#command")).to_contain_text(command)
        page.wait_for_function("document.getElementById('after_img').naturalWidth > 0")
        shown = page.inner_text("#settings")
        assert "fill=blur" in shown and "sketch=" not in shown and "/" not in shown, "no server path among them"
        page.locator(".job", has_text="bald_eagle").get_by_role("button", name="re-run with changes").click()
        page.click("text=Paint a photo")  # the other mode and back: the form follows, the re-run's values stay
        assert page.input_value("#f_iterations") == "3" and not page.is_visible("#f_fill")
        page.locator(".job", has_text="bald_eagle").get_by_role("button", name="re-run with changes").click()
        expect(page.locator("#f_fill")).to_be_visible()
        assert page.is_checked("#mode_colorize") and page.input_value("#f_fill") == "blur"
        browser.close()

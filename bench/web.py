"""The web page's latencies and queue on this machine, measured through a real server as a page sees them.

Usage:  python bench/web.py [--size 256] [--iterations 40] [--jobs 50] [--screenshot docs/images/web.png]

A real ``painterly serve`` (uvicorn in this process, the worker a spawned process, the real VGG-19 with every other
setting its default) on a scratch data folder, talked to over HTTP as the page does:

- **first preview**: from the POST that submits a job (with the worker idle and warm) to the moment its picture URL
  answers 200; with the worker cold too (the first job after the server starts: the worker loads the network);
- **step to page**: for every step event, the time between the worker emitting it (its clock) and this client
  receiving it over the event stream (the page then fetches the picture, at most 4 times a second);
- **many jobs**: ``--jobs`` jobs of 64 px and 3 steps submitted at once from as many threads; how long the
  submissions take, how long until all are done, and whether any is missing;
- ``--screenshot PATH``: the page in Debian's Chromium watching a job paint (PATH) and a finished job's result with
  its before/after slider (PATH's name with ``-result``); docs/images/web*.jpg are these, as JPEG.

Figures go to ``bench/results/web/web.json``.  Quote them with the CPU and whether the machine was shared.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "web"
EXAMPLES = REPO / "src" / "painterly" / "data" / "calibration"


def _server(data: Path) -> tuple[str, Any, threading.Thread]:
    import uvicorn

    from painterly.web.app import ServerSettings, WebServer, create_app

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = create_app(WebServer(ServerSettings(data=data, port=port)))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", server, thread


def _submit(client: httpx.Client, settings: dict[str, str], content: str = "chelsea_cat") -> str:
    answer = client.post("/api/jobs", data={"settings": json.dumps(settings), "content_ref": f"example:{content}",
                                            "style_refs": "example:starry_night"})  # fmt: skip
    answer.raise_for_status()
    return str(answer.json()["key"])


def _first_preview(client: httpx.Client, settings: dict[str, str]) -> float:
    started = time.perf_counter()
    key = _submit(client, settings)
    while client.get(f"/api/jobs/{key}/picture").status_code != 200:
        time.sleep(0.01)
    return time.perf_counter() - started


def _wait_idle(client: httpx.Client) -> None:
    while any(job["state"] in ("waiting", "running") for job in client.get("/api/jobs").json()["jobs"]):
        time.sleep(0.2)


def _step_delays(base: str, client: httpx.Client, settings: dict[str, str]) -> list[float]:
    delays: list[float] = []
    done = threading.Event()

    def listen() -> None:
        with httpx.stream("GET", f"{base}/api/events?seconds=600", timeout=None) as stream:
            kind = ""
            for line in stream.iter_lines():
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: ") and kind == "step":
                    event = json.loads(line[6:])
                    delays.append(time.time() - event["time"])
                    if event["step"] == event["total"]:
                        done.set()
                        return

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    time.sleep(0.5)
    _submit(client, settings)
    done.wait(600)
    return delays


def _many(client: httpx.Client, jobs: int) -> dict[str, Any]:
    tiny = {"size": "64", "start_size": "", "iterations": "3"}
    keys: list[str] = []
    started = time.perf_counter()
    threads = [threading.Thread(target=lambda: keys.append(_submit(client, tiny))) for _ in range(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    submitted = time.perf_counter() - started
    while True:
        states = {job["key"]: job["state"] for job in client.get("/api/jobs").json()["jobs"]}
        if all(states.get(key) in ("done", "failed") for key in keys):
            break
        time.sleep(0.2)
    return {"jobs": jobs, "submitted_s": round(submitted, 2), "all_done_s": round(time.perf_counter() - started, 1),
            "done": sum(states[k] == "done" for k in keys), "distinct_keys": len(set(keys))}  # fmt: skip


def _screenshot(base: str, path: Path) -> None:
    from playwright.sync_api import sync_playwright

    flags = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync"]  # fmt: skip
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=flags)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(base + "/")
        page.locator("#gallery figure").first.click()
        page.wait_for_function("document.getElementById('after_img').naturalWidth > 0")
        page.locator("#split").fill("55")
        page.locator("#result").screenshot(path=str(path.with_name(path.stem + "-result.png")), type="png")
        page.locator(".job", has_text="running").get_by_role("button", name="watch").click()
        step = "parseInt((/step (\\d+)/.exec(document.getElementById('stats').textContent) || [0, 0])[1])"
        page.wait_for_function(f"{step} >= 25", timeout=300_000)
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(path), type="png")
        browser.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--iterations", type=int, default=40)
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--screenshot", type=Path, default=None)
    args = parser.parse_args()
    settings = {"size": str(args.size), "iterations": str(args.iterations)}
    with tempfile.TemporaryDirectory(prefix="painterly-web-bench-") as scratch:
        base, server, thread = _server(Path(scratch))
        with httpx.Client(base_url=base, timeout=60) as client:
            cold = _first_preview(client, settings)
            _wait_idle(client)
            warm = []
            for _ in range(3):
                warm.append(_first_preview(client, settings))
                _wait_idle(client)
            delays = _step_delays(base, client, settings)
            _wait_idle(client)
            if args.screenshot is not None:
                _submit(client, {**settings, "iterations": "300"}, content="astronaut")
                _screenshot(base, args.screenshot)
                client.post(f"/api/jobs/{client.get('/api/jobs').json()['jobs'][-1]['key']}/cancel")
                _wait_idle(client)
            many = _many(client, args.jobs)
        server.should_exit = True
        thread.join(120)
    figures = {
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "python": sys.version.split()[0]},
        "settings": settings, "first_preview_cold_s": round(cold, 2),
        "first_preview_warm_s": [round(w, 2) for w in warm],
        "step_to_client_ms": {"median": round(1000 * statistics.median(delays), 1),
                              "max": round(1000 * max(delays), 1), "steps": len(delays)},
        "many_jobs": many,
    }  # fmt: skip
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "web.json").write_text(json.dumps(figures, indent=1) + "\n")
    print(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""painterly.web: the API over the job store and the worker process, with the tiny random network.

Each test runs a real server application (FastAPI's TestClient, the worker a real spawned process) on a temporary
data folder: jobs run, stream their steps, are cancelled, deleted, survive a restart and a killed worker; bad
uploads and requests from elsewhere are refused in one sentence.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi") if not os.environ.get("CI") else None
from fastapi.testclient import TestClient  # noqa: E402

from painterly.apps.cli import config_options  # noqa: E402
from painterly.config import CONFIG_FIELDS, RunConfig, option_info  # noqa: E402
from painterly.errors import OptionError  # noqa: E402
from painterly.web.app import WebServer, create_app  # noqa: E402
from painterly.web.form import (  # noqa: E402
    NOT_IN_FORM,
    cli_command,
    colorize_form,
    colorize_from_form,
    config_from_form,
    form_fields,
)

from .sketch_pictures import RAINBOW, drawing, patches, png  # noqa: E402
from .web_helpers import TINY, png_bytes, server_settings, submit, wait_for  # noqa: E402

LOCAL = "http://127.0.0.1"


@pytest.fixture
def serve(tmp_path: Path, weights_file: Path) -> Iterator[Any]:
    """``serve(**settings)`` -> a started client (worker running) on one data folder; closed at the end."""
    opened: list[Any] = []

    def start(**options: Any) -> Any:
        server = WebServer(server_settings(tmp_path / "data", weights_file, **options))
        client = TestClient(create_app(server), base_url=LOCAL)
        client.__enter__()
        client.server = server
        opened.append(client)
        return client

    yield start
    for client in reversed(opened):
        client.__exit__(None, None, None)


# --- the form ------------------------------------------------------------------------------------------------


def test_the_form_is_runconfigs_fields_with_the_clis_defaults_and_help() -> None:
    fields = {field["name"]: field for field in form_fields()}
    assert set(fields) == set(CONFIG_FIELDS) - NOT_IN_FORM
    cli = {
        kwargs["dest"]: kwargs
        for group in config_options().values()
        for flag, kwargs in group
        if flag == "--" + kwargs["dest"].replace("_", "-")
    }  # not the renamed options' hidden old flags
    for name, field in fields.items():
        default = cli[name]["default"]
        assert field["default"] == (list(default) if isinstance(default, tuple) else default), name
        assert field["help"] == option_info(name).help and field["group"] == option_info(name).group
        if "choices" in cli[name] and name != "init":
            assert field["choices"] == list(cli[name]["choices"]), name
    assert fields["size"]["kind"] == "int" and fields["size"]["group"] == "common"
    assert fields["start_size"]["optional"] and fields["style_layers"]["kind"] == "texts"
    assert fields["init"]["choices"] == ["content", "noise"]
    for name, field in fields.items():  # the number inputs' bounds are RunConfig's
        assert (field["min"], field["max"]) == (option_info(name).minimum, option_info(name).maximum), name
    assert fields["size"]["min"] == 16 and fields["momentum"]["max"] == 1 and fields["seed"]["min"] is None


def test_form_values_become_a_config_or_one_sentence() -> None:
    config = config_from_form({"size": "128", "start_size": "", "style_layers": "relu1_1, relu2_1",
                               "line_search": "false", "style_weight": "20"})  # fmt: skip
    assert config == RunConfig(size=128, start_size=None, style_layers=("relu1_1", "relu2_1"), line_search=False,
                               style_weight=20.0)  # fmt: skip
    assert config_from_form({"style_weight": "auto"}).style_weight == "auto"  # a number or the word, as the CLI
    for values, says in [({"size": "big"}, "'big' is not a whole number"), ({"size": "8"}, "size must be"),
                         ({"weights": "/etc/passwd"}, "server-only"), ({"init": "/etc/passwd"}, "init must be one of"),
                         ({"optimizer": "newton"}, "newton"),
                         ({"style_weight": "lots"}, "'lots' is not a number")]:  # fmt: skip
        with pytest.raises(OptionError, match=says):
            config_from_form(values)


def test_the_command_reproduces_the_settings() -> None:
    settings = RunConfig(size=64, start_size=None, line_search=True, style_layers=("relu1_1",)).to_dict()
    command = cli_command("my photo.jpg", ["art.png"], settings)
    assert command == ("painterly 'my photo.jpg' art.png --size 64 --start-size none --style-layers relu1_1 "
                       "--line-search -o result.png")  # fmt: skip
    import shlex

    from painterly.apps.cli import parse_stylize_arguments

    _, _, parsed = parse_stylize_arguments(shlex.split(command)[1:])
    assert RunConfig(**parsed) == RunConfig.from_dict(settings)


# --- jobs ----------------------------------------------------------------------------------------------------


def _events(client: TestClient, after: int = 0, seconds: float = 1.0) -> list[tuple[str, dict[str, Any]]]:
    """The event stream from event ``after`` on, read for ``seconds`` (the stream then ends by itself)."""
    found: list[tuple[str, dict[str, Any]]] = []
    with client.stream("GET", f"/api/events?seconds={seconds}", headers={"Last-Event-ID": str(after)}) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        kind = "message"
        for line in stream.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                found.append((kind, json.loads(line[6:])))
    return found


def test_a_job_runs_streams_its_steps_and_leaves_its_files(serve: Any) -> None:
    client = serve()
    started = submit(client)
    assert started.status_code == 201, started.text
    key = started.json()["key"]
    job = wait_for(client, key, ("done", "failed"))
    assert job["state"] == "done", job["reason"]
    events = _events(client, after=0, seconds=0.5)  # replayed from the start: Last-Event-ID 0
    steps = [data for kind, data in events if kind == "step" and data["key"] == key]
    assert [s["step"] for s in steps] == [1, 2, 3] and steps[-1]["total"] == 3 and steps[-1]["size"][0] == 64
    assert {"content", "style", "total"} <= set(steps[-1]["losses"]) and steps[-1]["preview"] >= 1
    states = [data["state"] for kind, data in events if kind == "state" and data["key"] == key]
    assert states == ["waiting", "running", "done"]
    assert [row["step"] for row in job["trace"]] == [1, 2, 3]
    assert job["result"]["settings"]["size"] == 64 and job["command"].startswith("painterly photo.png art0.png")
    picture = client.get(f"/api/jobs/{key}/picture")
    assert picture.status_code == 200 and Image.open(__import__("io").BytesIO(picture.content)).size == (64, 53)
    download = client.get(f"/api/jobs/{key}/download")
    assert "attachment" in download.headers["content-disposition"] and download.content == picture.content
    assert client.get(f"/api/jobs/{key}/trace").text.count("\n") == 3
    half = np.asarray(Image.open(__import__("io").BytesIO(client.get(f"/api/jobs/{key}/blend?strength=0.5").content)))
    full = np.asarray(Image.open(__import__("io").BytesIO(client.get(f"/api/jobs/{key}/blend?strength=1").content)))
    none = np.asarray(Image.open(__import__("io").BytesIO(client.get(f"/api/jobs/{key}/blend?strength=0").content)))
    assert np.abs(half.astype(int) - (full.astype(int) + none) / 2).max() <= 1 and not np.array_equal(full, none)
    assert client.get(f"/api/jobs/{key}/content").headers["content-type"] == "image/png"
    folder = client.server.data.result(key)
    assert (folder / "image.png").exists()
    assert client.delete(f"/api/jobs/{key}").status_code == 200
    assert not folder.exists() and client.get(f"/api/jobs/{key}").status_code == 404
    assert client.get("/api/jobs").json()["jobs"] == []


def test_a_rerun_reuses_the_inputs_by_reference_and_examples_work(serve: Any) -> None:
    client = serve()
    first = client.get(f"/api/jobs/{submit(client).json()['key']}").json()
    again = submit(client, {**TINY, "style_weight": "5"}, content_ref=first["inputs"]["content"],
                   style_refs=first["inputs"]["styles"])  # fmt: skip
    assert again.status_code == 201, again.text
    example = submit(client, content_ref="example:chelsea_cat", style_refs=["example:starry_night"])
    assert example.status_code == 201, example.text
    job = wait_for(client, example.json()["key"], ("done", "failed"))
    assert job["state"] == "done" and job["label"] == {"content": "chelsea_cat", "style": "starry_night"}
    rerun = wait_for(client, again.json()["key"], ("done", "failed"))
    assert rerun["settings"]["style_weight"] == 5.0 and rerun["inputs"] == first["inputs"]


def test_cancel_stops_the_running_job_within_a_step_and_keeps_its_picture(serve: Any) -> None:
    client = serve()
    key = submit(client, {**TINY, "iterations": "100000"}).json()["key"]
    waiting = submit(client).json()["key"]
    deadline = time.monotonic() + 60
    while (client.server.hub.latest.get(key) or {}).get("step", 0) < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert client.post(f"/api/jobs/{waiting}/cancel").json()["state"] == "cancelled"  # a waiting job: at once
    asked = time.monotonic()
    assert client.post(f"/api/jobs/{key}/cancel").json()["state"] == "running"
    job = wait_for(client, key, ("cancelled",), timeout=30)
    assert time.monotonic() - asked < 5
    assert job["progress"]["step"] < 100000 and job["has_picture"]
    assert client.get(f"/api/jobs/{key}/picture").headers["content-type"] == "image/png"
    assert client.get(f"/api/jobs/{waiting}").json()["state"] == "cancelled"
    assert client.delete(f"/api/jobs/{key}").status_code == 200
    assert not client.server.data.last_image(key).exists()


def test_a_graceful_restart_resumes_bit_identically(serve: Any) -> None:
    settings = {**TINY, "iterations": "40"}
    client = serve(checkpoint_every=0)
    reference = submit(client, settings).json()["key"]
    wait_for(client, reference, ("done",), timeout=120)
    key = submit(client, settings).json()["key"]
    while (client.server.hub.latest.get(key) or {}).get("step", 0) < 10:
        time.sleep(0.01)
    client.__exit__(None, None, None)  # the server stops: the worker writes the checkpoint
    client = serve(checkpoint_every=0)
    job = wait_for(client, key, ("done", "failed"), timeout=120)
    assert job["state"] == "done" and job["result"]["resumed_at_step"] >= 10
    same = [np.asarray(Image.open(client.server.data.result(k) / "image.png")) for k in (reference, key)]
    assert np.array_equal(*same)


def _kill_worker_at_step(client: Any, key: str, step: int) -> int:
    """SIGKILL the worker once ``key`` has passed ``step`` (as the hub last heard); returns the killed pid."""
    deadline = time.monotonic() + 120
    while (client.server.hub.latest.get(key) or {}).get("step", 0) < step:
        assert time.monotonic() < deadline, f"job {key} never reached step {step}"
        time.sleep(0.01)
    worker = client.server.worker
    os.kill(worker.pid, signal.SIGKILL)
    worker.join(10)
    return int(worker.pid)


def test_a_killed_worker_is_started_again_and_its_job_continues_from_the_last_checkpoint(serve: Any) -> None:
    """The server stays up: a worker killed mid-job (out of memory, say) is replaced, and the job resumes from its
    last periodic checkpoint, not from the start."""
    client = serve(checkpoint_every=5)
    key = submit(client, {**TINY, "iterations": "40"}).json()["key"]
    killed = _kill_worker_at_step(client, key, 17)
    job = wait_for(client, key, ("done", "failed"), timeout=120)
    assert job["state"] == "done" and job["attempts"] == 2
    assert job["result"]["resumed_at_step"] >= 15 and job["result"]["resumed_at_step"] % 5 == 0
    assert client.server.worker.pid != killed and client.server.worker.is_alive()
    assert client.get("/api/jobs").json()["worker"] == "ready"


def test_a_job_that_kills_the_worker_twice_fails_and_the_queue_goes_on(serve: Any) -> None:
    """A job running at two worker deaths in a row is failed with the reason, and the jobs after it still run."""
    client = serve(checkpoint_every=5)
    doomed = submit(client, {**TINY, "iterations": "400"}).json()["key"]
    after = submit(client, {**TINY, "iterations": "4"}, content=png_bytes(seed=7)).json()["key"]
    _kill_worker_at_step(client, doomed, 3)
    client.server.hub.latest.pop(doomed, None)  # the resumed run's steps start from its checkpoint
    _kill_worker_at_step(client, doomed, 6)
    job = wait_for(client, doomed, ("done", "failed", "interrupted"), timeout=60)
    assert job["state"] == "failed" and "died 2 times" in job["reason"] and "signal 9" in job["reason"]
    assert wait_for(client, after, ("done", "failed"), timeout=120)["state"] == "done"


def test_a_page_that_goes_away_loses_no_job(serve: Any) -> None:
    client = serve()
    key = submit(client, {**TINY, "iterations": "12"}).json()["key"]
    with client.stream("GET", "/api/events?seconds=60") as stream:
        for line in stream.iter_lines():
            if line.startswith("event: step"):
                break  # the browser goes away in the middle of the run
    job = wait_for(client, key, ("done", "failed"), timeout=120)
    assert job["state"] == "done" and [row["step"] for row in job["trace"]] == list(range(1, 13))


def test_fifty_tiny_jobs_at_once_all_finish(serve: Any) -> None:
    client = serve()
    keys: list[str] = []
    failures: list[str] = []

    def one(seed: int) -> None:
        try:  # every style upload is the same picture: fifty requests save one file at once
            answer = submit(client, content=png_bytes(seed=seed))
        except Exception as error:  # the app raised (TestClient re-raises): the thread must not vanish silently
            failures.append(repr(error))
            return
        (keys.append(answer.json()["key"]) if answer.status_code == 201 else failures.append(answer.text))

    threads = [threading.Thread(target=one, args=(seed,)) for seed in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == [] and len(set(keys)) == 50, failures
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        states = [job["state"] for job in client.get("/api/jobs").json()["jobs"]]
        if states.count("done") == 50:
            break
        time.sleep(0.5)
    assert states.count("done") == 50, states
    assert all((client.server.data.result(key) / "image.png").exists() for key in keys)


# --- colouring a sketch --------------------------------------------------------------------------------------


def test_the_sketch_form_is_colorizes_own_table_with_its_defaults() -> None:
    from painterly.sketch.colorize import COLORIZE_DEFAULTS, COLORIZE_OPTIONS

    described = colorize_form()
    assert [field["name"] for field in described["fields"]] == [option.name for option in COLORIZE_OPTIONS]
    for field, option in zip(described["fields"], COLORIZE_OPTIONS, strict=True):
        assert (field["kind"], field["default"], field["help"], field["min"], field["max"], field["choices"]) == (
            option.kind, option.default, option.help, option.low, option.high, list(option.choices))  # fmt: skip
    assert described["defaults"] == COLORIZE_DEFAULTS and described["hidden"] == ["init"]
    config, options = colorize_from_form({"fill": "blur", "saturation": "2", "size": "64", "line_width": ""})
    assert config == RunConfig(size=64, iterations=200, style_weight=10.0), "colorize's defaults under the form's"
    assert options == {"fill": "blur", "saturation": 2.0, "min_lightness": 0.3, "line_opacity": 1.0,
                       "line_width": 0, "despeckle": 0}  # fmt: skip


def test_a_bad_colouring_value_gets_the_sentence_painterly_colorize_gives(
    tmp_path: Path, weights_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from painterly.apps.cli import main

    sketch, style = tmp_path / "sketch.png", tmp_path / "art.png"
    drawing().save(sketch)
    patches(RAINBOW).save(style)
    for name, value in [("line_width", "-2"), ("saturation", "11"), ("min_lightness", "0.99")]:
        with pytest.raises(OptionError) as refused:
            colorize_from_form({name: value})
        code = main(["colorize", str(sketch), str(style), "-o", str(tmp_path / "o.png"), f"--{name.replace('_', '-')}",
                     value, "--weights", str(weights_file), "-q"])  # fmt: skip
        err = capsys.readouterr().err
        assert code == 2 and str(refused.value) in err and len(err.strip().splitlines()) == 1, (name, err)


def test_a_bad_colouring_request_is_refused_in_one_sentence(serve: Any) -> None:
    client = serve()
    page = png(drawing())
    for kind, settings, says in [
        ("colorize", {"saturation": "11"}, "saturation must be between 0 and 10, not 11.0"),
        ("colorize", {"line_width": "-1"}, "line width must be 0 (off) or a positive number of pixels, not -1"),
        ("colorize", {"fill": "paint"}, "unknown fill 'paint'; choose one of regions, blur, white"),
        ("colorize", {"saturation": "lots"}, "saturation: 'lots' is not a number"),
        ("colorize", {"init": "noise"}, "colorize() sets the stylize option 'init' itself; leave it out"),
        ("stylize", {"fill": "blur"}, "unknown or server-only setting(s) fill"),
        ("sculpt", {}, "a job's kind is one of stylize, colorize, not 'sculpt'"),
    ]:
        answer = submit(client, {**TINY, **settings}, content=page, content_name="sketch.png", kind=kind)
        assert answer.status_code == 400 and answer.json()["detail"] == says, answer.text
    assert client.get("/api/jobs").json()["jobs"] == []
    blank = submit(client, TINY, content=png(Image.new("RGB", (64, 48), "white")), kind="colorize").json()["key"]
    job = wait_for(client, blank, ("done", "failed"))  # a page with no lines: colorize's own sentence, as a failure
    assert job["state"] == "failed"
    assert job["reason"] == "the sketch has no visible lines (it is nearly one flat colour)"


def test_the_form_offers_the_sketch_mode_and_its_bundled_sketches(serve: Any) -> None:
    client = serve()
    form = client.get("/api/form").json()
    assert form["kinds"] == ["stylize", "colorize"] and form["colorize"] == colorize_form()
    sketches = [name for name, role in form["examples"].items() if role == "sketch"]
    assert len(sketches) >= 3
    for name in sketches:
        answer = client.get(f"/api/examples/{name}")
        assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
        ink = np.asarray(Image.open(__import__("io").BytesIO(answer.content)).convert("L")) < 128
        assert 0.02 < ink.mean() < 0.2, f"{name} is line art: dark lines on white paper"


def test_a_sketch_job_colours_the_drawing_keeps_its_lines_and_names_the_colorize_command(
    serve: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io
    import shlex

    from painterly import reproduce
    from painterly.apps.cli import main
    from painterly.sketch.colorize import line_f1, paper_saturation

    client = serve()
    page, style = drawing(), patches(RAINBOW)
    started = submit(client, {**TINY, "saturation": "1.5"}, content=png(page), styles=(png(style),),
                     content_name="sketch.png", kind="colorize")  # fmt: skip
    assert started.status_code == 201, started.text
    key = started.json()["key"]
    job = wait_for(client, key, ("done", "failed"))
    assert job["state"] == "done", job["reason"]
    assert job["kind"] == "colorize" and job["options"]["saturation"] == 1.5 and job["options"]["fill"] == "regions"
    assert job["settings"]["style_weight"] == 10.0, "colorize's default, not stylize's 50"
    assert [row["step"] for row in job["trace"]] == [1, 2, 3]
    result = Image.open(io.BytesIO(client.get(f"/api/jobs/{key}/picture").content)).convert("RGB")
    assert result.size == (64, 50)
    lines = line_f1(result, page)
    assert lines["f1"] > 0.9 and lines["ink_luminance"] < 0.12, lines  # the sketch's dark lines stay dark and crisp
    assert paper_saturation(result, page) > 0.3, "the paper is coloured: colorize ran, not a plain transfer"
    saved = json.loads((client.server.data.result(key) / "settings.json").read_text())
    assert saved["kind"] == "colorize" and saved["settings"]["saturation"] == 1.5
    assert "checkpoint" not in saved["settings"] and "init" not in saved["settings"]
    command = job["command"]
    assert command.startswith("painterly colorize sketch.png art0.png --saturation 1.5 --size 64 "), command
    assert "--init" not in command and "--checkpoint" not in command and "--style-weight" not in command
    monkeypatch.chdir(tmp_path)  # the command, run where the user's files are, makes the same picture
    page.save("sketch.png")
    style.save("art0.png")
    assert main([*shlex.split(command)[1:], "-q"]) == 0
    again = np.asarray(Image.open(tmp_path / "result.png").convert("RGB"), dtype=int)
    assert np.abs(again - np.asarray(result, dtype=int)).max() <= 2
    made = reproduce(client.server.data.result(key) / "image.png")  # and so does the picture's own record
    assert np.abs(np.asarray(made, dtype=int) - np.asarray(result, dtype=int)).max() <= 2


def test_a_sketch_job_stopped_by_the_server_starts_again_from_the_beginning(serve: Any) -> None:
    from painterly.batch.runner import checkpoint_path
    from painterly.batch.store import JobStore

    client = serve(checkpoint_every=2)
    key = submit(client, {**TINY, "iterations": "200"}, content=png(drawing()), kind="colorize").json()["key"]
    deadline = time.monotonic() + 60
    while (client.server.hub.latest.get(key) or {}).get("step", 0) < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    client.__exit__(None, None, None)  # the server stops between two steps
    with JobStore(client.server.data.store_path) as store:
        row = store.get(key)
    assert row is not None and row.state == "interrupted"
    assert row.reason == ("the server stopped; a sketch's colouring keeps no checkpoint, so it starts again from "
                          "the beginning")  # fmt: skip
    assert not checkpoint_path(client.server.data.work, key).exists()
    client = serve(checkpoint_every=2)
    job = wait_for(client, key, ("done", "failed"), timeout=120)
    assert job["state"] == "done" and job["attempts"] == 2 and job["result"]["resumed_at_step"] == 0
    assert [row["step"] for row in job["trace"]] == list(range(1, 201)), "one whole run, not two halves"


def test_a_job_stored_before_kinds_existed_is_a_style_transfer(serve: Any, tmp_path: Path) -> None:
    import sqlite3

    from painterly.batch.store import JobStore

    old = {
        "content": "/pictures/c.png",
        "styles": ["/pictures/s.png"],
        "config": RunConfig(size=64).to_dict(),
        "label": {"content": "c.png", "style": "s.png"},
    }  # a spec as the store held it: no kind, no options
    JobStore.open(tmp_path / "data" / "jobs.sqlite").close()
    with sqlite3.connect(tmp_path / "data" / "jobs.sqlite") as db:
        db.execute("INSERT INTO jobs (key, position, spec, state, updated) VALUES (?, 0, ?, 'cancelled', 0)",
                   ("0123456789abcdef", json.dumps(old)))  # fmt: skip
    client = serve()
    job = client.get("/api/jobs/0123456789abcdef").json()
    assert job["kind"] == "stylize" and job["options"] == {} and job["settings"]["size"] == 64
    assert job["command"] == "painterly c.png s.png --size 64 -o result.png"


# --- refusals ------------------------------------------------------------------------------------------------


def test_bad_uploads_get_the_loaders_sentence_without_the_servers_path(serve: Any) -> None:
    client = serve()
    for content, says in [(b"not an image at all", "content photo.png: not an image file Pillow can read"),
                          (png_bytes()[:60], "content photo.png: image data is damaged or truncated"),
                          (b"", "content photo.png: file is empty")]:  # fmt: skip
        answer = submit(client, content=content)
        assert answer.status_code == 400 and answer.json()["detail"].startswith(says), answer.text
        assert str(client.server.data.root) not in answer.text and "Traceback" not in answer.text
    huge = __import__("io").BytesIO()
    Image.new("L", (8000, 7000)).save(huge, "PNG")  # 56 million pixels, a few kB
    answer = submit(client, content=huge.getvalue())
    assert answer.status_code == 400 and "more than 50,000,000 pixels" in answer.json()["detail"]
    answer = submit(client, content=b"\0" * (25 * 2**20 + 1))
    assert answer.status_code == 400 and "larger than the 25 MiB upload limit" in answer.json()["detail"]
    answer = submit(client, {"size": "8"})
    assert answer.status_code == 400 and "size must be at least 16" in answer.json()["detail"]
    answer = submit(client, styles=())
    assert answer.status_code == 400 and "give 1 to 8 style images" in answer.json()["detail"]
    assert client.get("/api/jobs").json()["jobs"] == []


def test_one_picture_uploaded_by_many_requests_at_once_is_saved_once(tmp_path: Path) -> None:
    """Many jobs share a style: requests saving the same upload together must neither fail nor leave part files
    (a shared part file once made one of fifty submissions fail with FileNotFoundError)."""
    from painterly.web.data import DataFolder

    data = DataFolder(tmp_path / "data", quota_bytes=2**30)
    picture, start = png_bytes(seed=3), threading.Barrier(16)
    saved: list[Path] = []
    errors: list[str] = []

    def save() -> None:
        start.wait()
        try:
            saved.append(data.save_upload(picture, "art.png", "style"))
        except Exception as error:
            errors.append(repr(error))

    threads = [threading.Thread(target=save) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(saved) == 16 and len(set(saved)) == 1
    assert saved[0].read_bytes() == picture and sorted(p.name for p in saved[0].parent.iterdir()) == [saved[0].name]


def test_no_request_reaches_outside_the_data_folder(serve: Any) -> None:
    client = serve()
    for path in ["/api/jobs/..%2F..%2Fetc%2Fpasswd/picture", "/api/jobs/../../etc/passwd", "/api/examples/..%2Fx",
                 "/api/jobs/0123456789abcdef/download", "/api/examples/passwd"]:  # fmt: skip
        answer = client.get(path)
        assert answer.status_code in (400, 404), (path, answer.status_code)
        assert "root:" not in answer.text
    for ref in ["upload:../../../etc/passwd", "example:../../etc/passwd", "file:/etc/passwd"]:
        answer = submit(client, content_ref=ref)
        assert answer.status_code == 400 and "root:" not in answer.text, ref


def test_other_sites_and_unknown_hosts_are_refused(serve: Any) -> None:
    client = serve()
    assert client.get("/api/jobs", headers={"Host": "evil.example"}).status_code == 400
    assert client.get("/api/jobs", headers={"Host": "localhost:8765"}).status_code == 200
    answer = submit(client, headers={"Origin": "http://evil.example"}) if False else client.post(
        "/api/jobs", headers={"Origin": "http://evil.example"}, data={"settings": "{}"})  # fmt: skip
    assert answer.status_code == 403 and answer.json() == {"detail": "requests from other sites are refused"}
    assert client.get("/api/jobs", headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
    assert client.get("/api/jobs", headers={"Origin": "http://127.0.0.1:8765"}).status_code == 200


def test_beyond_loopback_every_request_needs_the_token(serve: Any) -> None:
    client = serve(host="0.0.0.0")
    token = client.server.settings.token
    assert token and len(token) >= 24
    answer = client.get("/api/jobs")
    assert answer.status_code == 401 and "token" in answer.json()["detail"]
    assert client.get("/api/jobs", headers={"X-Painterly-Token": "wrong"}).status_code == 401
    assert client.get("/api/jobs", headers={"X-Painterly-Token": token}).status_code == 200
    page = client.get(f"/?token={token}")
    assert page.status_code == 200 and "painterly_token" in page.headers["set-cookie"]
    assert client.get("/api/jobs").status_code == 200  # the cookie now
    assert "samesite=strict" in page.headers["set-cookie"].lower()


def test_the_quota_refuses_new_work(serve: Any) -> None:
    client = serve(quota_bytes=10_000)
    answer = submit(client, content=png_bytes((200, 200), seed=3))
    assert answer.status_code == 400 and "quota" in answer.json()["detail"]
    client.server.data.quota_bytes = 200_000  # room for the store and one small upload, not for the next job
    assert submit(client).status_code == 201
    client.server.data.quota_bytes = client.server.data.used_bytes()
    answer = submit(client, content_ref="example:coffee", style_refs=["example:scream"])  # no upload: still checked
    assert answer.status_code == 400 and "quota" in answer.json()["detail"]


def test_without_the_extra_one_sentence_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess
    import sys

    code = ("import sys; sys.modules['fastapi'] = None\n"
            "from painterly.apps.cli import main; sys.exit(main(['serve']))")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")})  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().endswith("pip install 'painterly[web]'") and done.stderr.count("\n") == 1


def test_the_job_stores_additions_for_the_queue(tmp_path: Path) -> None:
    """claim_next takes interrupted jobs first, then waiting ones in order; a conditional change and a delete are
    atomic; a batch's counts are unchanged until a job is cancelled."""
    from painterly.batch.grid import JobSpec
    from painterly.batch.store import STATES, JobStore

    spec = JobSpec("c.png", ("s.png",), RunConfig())
    with JobStore.open(tmp_path / "jobs.sqlite") as store:
        store.add([("a", spec), ("b", spec), ("c", spec)])
        store.started("c")
        store.interrupted("c")
        assert set(store.counts()) == set(STATES)
        claimed = [store.claim_next(), store.claim_next()]
        assert [(row.key, row.state, row.attempts) for row in claimed if row] == [("c", "running", 2),
                                                                                  ("a", "running", 1)]  # fmt: skip
        assert not store.set_state_if("a", ("pending",), "cancelled") and store.get("a").state == "running"
        assert store.set_state_if("b", ("pending",), "cancelled", "by hand") and store.claim_next() is None
        assert store.counts()["cancelled"] == 1 and store.get("b").reason == "by hand"
        assert store.delete("b") and not store.delete("b") and store.get("b") is None


def _alive(pid: int) -> bool:
    """Whether a process runs (a zombie that no one has reaped yet has ended)."""
    try:
        return "\tZ" not in Path(f"/proc/{pid}/status").read_text().split("State:")[1].splitlines()[0]
    except (OSError, IndexError):
        return False


def _serve_process(data: Path, weights: Path, port: int) -> Any:
    import subprocess
    import sys

    process = subprocess.Popen(
        [sys.executable, "-m", "painterly", "serve", "--data", str(data), "--port", str(port), "--weights",
         str(weights), "--checkpoint-every", "5"],
        stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")},
    )  # fmt: skip
    assert process.stdout is not None
    line = process.stdout.readline()
    assert f"at http://127.0.0.1:{port}/ (loopback only)" in line, line
    return process


def test_a_server_killed_with_sigkill_takes_its_worker_down_and_the_job_continues(
    tmp_path: Path, weights_file: Path
) -> None:
    """``kill -9`` of ``painterly serve``: its worker notices between two steps and stops with a checkpoint (no
    orphan runs beside the next server's worker); the next server continues the job."""
    import socket

    import httpx

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = _serve_process(tmp_path / "data", weights_file, port)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                key = submit(httpx.Client(base_url=base), {**TINY, "iterations": "60"}).json()["key"]
                break
            except httpx.ConnectError:
                time.sleep(0.1)
        with httpx.Client(base_url=base) as client:
            while (client.get(f"/api/jobs/{key}").json()["progress"] or {}).get("step", 0) < 7:
                time.sleep(0.05)
        children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
        workers = [int(pid) for pid in children if "spawn_main" in Path(f"/proc/{pid}/cmdline").read_text()]
        assert len(workers) == 1
        os.kill(server.pid, signal.SIGKILL)
        server.wait(10)
        deadline = time.monotonic() + 30
        while _alive(workers[0]) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(workers[0]), "the worker outlived its server"
    finally:
        server.kill()
    server = _serve_process(tmp_path / "data", weights_file, port)
    try:
        with httpx.Client(base_url=base) as client:
            job = wait_for(client, key, ("done", "failed"), timeout=120)
        assert job["state"] == "done" and job["result"]["resumed_at_step"] >= 7
    finally:
        server.terminate()
        server.wait(60)

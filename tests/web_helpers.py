"""What the web tests share: a server on a temporary data folder whose jobs use the tiny random network."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

from PIL import Image

#: A job that runs in a fraction of a second with the tiny network: 64 px, 3 steps, one stage, float32.
TINY = {"size": "64", "start_size": "", "iterations": "3", "mixed_precision": "false"}


def png_bytes(size: tuple[int, int] = (48, 40), seed: int = 0) -> bytes:
    """A small picture with some structure, as PNG bytes."""
    image = Image.radial_gradient("L").resize(size).convert("RGB")
    image = Image.merge("RGB", [image.getchannel(0).point(lambda v, s=seed, c=c: (v * (c + 1) + 37 * s) % 256)
                                for c in range(3)])  # fmt: skip
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def submit(client: Any, settings: dict[str, str] | None = None, *, content: bytes | None = None,
           styles: tuple[bytes, ...] | None = None, content_name: str = "photo.png", **fields: Any) -> Any:  # fmt: skip
    """POST /api/jobs with uploads (a content and one style by default) and the form's settings; ``fields`` are
    the form's other fields (``kind="colorize"`` colours the content as a sketch)."""
    files: list[tuple[str, tuple[str, bytes, str]]] = []
    if content is not None or "content_ref" not in fields:
        upload = content if content is not None else png_bytes(seed=1)
        files.append(("content", (content_name, upload, "image/png")))
    if styles is None and "style_refs" not in fields:
        styles = (png_bytes((40, 40), seed=2),)
    for number, style in enumerate(styles or ()):
        files.append(("styles", (f"art{number}.png", style, "image/png")))
    data = {"settings": json.dumps(TINY if settings is None else settings), **fields}
    return client.post("/api/jobs", files=files, data=data)


def wait_for(client: Any, key: str, states: tuple[str, ...], timeout: float = 60.0) -> dict[str, Any]:
    """Poll the job until it reaches one of ``states``; fails the test on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{key}").json()
        if job["state"] in states:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {key} is still {job['state']} after {timeout} s, not {states}")


def server_settings(data: Path, weights: Path, **options: Any) -> Any:
    from painterly.web.app import ServerSettings

    return ServerSettings(data=data, fixed={"weights": str(weights)}, **options)

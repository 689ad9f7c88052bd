"""Runs the README's tour verbatim with curl against a gateway served over HTTP on loopback and a real worker.

Every ```bash block of the README's `## Tour` section is cut into commands (backslash continuations joined); a
`# => {json}` line after a command lists fields its JSON answer must contain. All commands run in one bash
session (so `ID=$(...)` carries over), each with its own exit status and output: `--fail-with-body` makes any
HTTP error a non-zero exit. Only `MOD_URL` differs from the README's default (a free port).

With the shipped text model built (var/models/text-default, as run.sh and test.sh build it) the stack runs it
with the shipped policy and every field is checked, model and policy versions and decisions included. Without it,
the tiny random model runs with a policy that sends every text to review, and the fields that come from the model
(`decision`, `flagged`, `models`, `policy_version` of a model verdict) are not compared; that case is reported.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.core.config import Settings
from tests.support.redis_server import RedisServer, free_port
from tests.support.workers import ROOT, WorkerProcess, poll, settings_env
from training.vision.fetch import MODEL_DIR, fetch_models

README = ROOT / "README.md"
MODEL_FIELDS = {"decision", "flagged", "models", "policy_version"}
TINY_POLICY = """name: tour-tiny
version: 1
default_thresholds: {review: 0.0, block: 1.0}
"""


@dataclass
class Command:
    text: str
    expect: dict[str, Any] | None = None
    lines: list[str] = field(default_factory=list)


def tour_commands(markdown: str) -> list[Command]:
    section = markdown.split("\n## Tour\n", 1)[1].split("\n## ", 1)[0]
    commands: list[Command] = []
    for block in re.findall(r"```bash\n(.*?)```", section, flags=re.S):
        pending = ""
        for line in block.splitlines():
            if line.startswith("# =>"):
                commands[-1].expect = json.loads(line[len("# =>"):])
                continue
            if not line.strip() or (line.startswith("#") and not pending):
                continue
            pending += line[:-1] + " " if line.endswith("\\") else line
            if not line.endswith("\\"):
                commands.append(Command(pending))
                pending = ""
    return commands


def contains(actual: Any, expected: Any) -> bool:
    """Every field of `expected` is in `actual` with the same value (dicts recursively; lists and scalars equal)."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(k in actual and contains(actual[k], v) for k, v in expected.items())
    return bool(actual == expected)


def relaxed(expected: dict[str, Any]) -> dict[str, Any]:
    """Without the shipped model: drop what the (random) model decides, keep what humans and the service decide."""
    if expected.get("source") == "human":
        return expected
    return {k: relaxed(v) if isinstance(v, dict) else v for k, v in expected.items() if k not in MODEL_FIELDS}


def shipped_model() -> Path | None:
    path = Path(Settings().text_model_path)
    return path if (path / "moderation.json").exists() else None


@pytest.fixture(scope="module")
def tour_stack(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Iterator[tuple[str, bool]]:
    """(gateway URL, whether the shipped model runs): Redis, one worker on every queue, uvicorn on loopback."""
    tmp = tmp_path_factory.mktemp("tour")
    fetch_models(MODEL_DIR)
    real = shipped_model()
    values: dict[str, object] = {"env": "test", "data_dir": str(tmp / "var"), "torch_threads": 1,
                                 "worker_heartbeat_s": 1, "bootstrap_admin_key": "dev-admin-key",
                                 "bootstrap_platform_key": "dev-platform-key",
                                 "bootstrap_moderator_key": "dev-moderator-key", "bootstrap_tenant": "demo"}
    if real is None:
        (tmp / "policy.yaml").write_text(TINY_POLICY)
        values.update(text_model_path=str(tiny_model), policy_path=str(tmp / "policy.yaml"))
    server = RedisServer(workdir=tmp / "redis")
    server.start()
    url = server.url(0)
    worker = WorkerProcess(url, settings_env(values), queues="text,webhooks,media,rescan",
                           log_path=tmp / "worker.log").start(deadline_s=300)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(tmp / "gateway.log", "wb")  # noqa: SIM115
    gateway = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "service.gateway.app:create_app", "--host", "127.0.0.1",
         "--port", str(port)],
        cwd=ROOT, env={**os.environ, **settings_env(values), "MOD_REDIS_URL": url}, stdout=log,
        stderr=subprocess.STDOUT)
    try:
        poll(lambda: _ready(base), 300, 0.5)
        # Warm the worker (first batch) so the tour's `?wait=10` measures a ready service, not a cold start.
        warm = httpx.post(base + "/v1/moderations?wait=10", json={"text": "warm up"}, timeout=30,
                          headers={"Authorization": "Bearer dev-platform-key"})
        assert warm.status_code in (200, 202), warm.text
        yield base, real is not None
    finally:
        gateway.terminate()
        gateway.wait(timeout=30)
        log.close()
        worker.stop()
        server.stop()


def _ready(base: str) -> bool:
    try:
        return httpx.get(base + "/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_tour_is_parsed() -> None:
    commands = tour_commands(README.read_text(encoding="utf-8"))
    curls = [c for c in commands if "curl " in c.text]
    assert len(curls) >= 8 and sum(c.expect is not None for c in commands) >= 5
    assert all("$MOD_URL/" in c.text for c in curls), "every request goes to $MOD_URL"
    assert not any("callback_url" in c.text for c in commands), "no callback a fresh offline machine cannot reach"


@dataclass
class Outcome:
    command: Command
    rc: int
    out: str
    err: str


@pytest.fixture(scope="module")
def tour_run(tour_stack: tuple[str, bool], tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Outcome], bool]:
    """Run every tour command once, in order, in one bash session; keep each one's exit status and output."""
    base, real_model = tour_stack
    out_dir = tmp_path_factory.mktemp("tour-out")
    commands = tour_commands(README.read_text(encoding="utf-8"))
    script = ["set -o pipefail"]
    for i, cmd in enumerate(commands):
        script.append(f"{cmd.text} >{out_dir}/{i}.out 2>{out_dir}/{i}.err; echo $? >{out_dir}/{i}.rc")
    run = subprocess.run(["bash", "-c", "\n".join(script)], cwd=ROOT, env={**os.environ, "MOD_URL": base},
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    return [Outcome(cmd, int((out_dir / f"{i}.rc").read_text()), (out_dir / f"{i}.out").read_text(),
                    (out_dir / f"{i}.err").read_text()) for i, cmd in enumerate(commands)], real_model


def mismatches(outcomes: list[Outcome], strict: bool) -> list[str]:
    failures = []
    for o in outcomes:
        if o.rc != 0:
            failures.append(f"exit {o.rc}: {o.command.text}\n{o.out}{o.err}")
            continue
        if "curl " in o.command.text and not o.command.text.startswith("ID="):
            body = json.loads(o.out)  # every answer is JSON
            expect = o.command.expect
            if expect is not None and not strict:
                expect = relaxed(expect)
            if expect is not None and not contains(body, expect):
                failures.append(f"{o.command.text}\nexpected fields {expect}\ngot {o.out[:2000]}")
    return failures


def test_readme_tour_runs_verbatim(tour_run: tuple[list[Outcome], bool]) -> None:
    """Every command exits 0 (no HTTP error) and answers JSON with the documented service-side fields."""
    outcomes, _ = tour_run
    failures = mismatches(outcomes, strict=False)
    assert not failures, "\n\n".join(failures)


def test_readme_samples_match_the_shipped_model_and_policy(tour_run: tuple[list[Outcome], bool]) -> None:
    """The documented decisions, flagged categories, model and policy versions are what the shipped ones give."""
    outcomes, real_model = tour_run
    if not real_model:
        pytest.skip("the shipped text model is not built (scripts/setup.sh builds it): decisions and model/policy "
                    "versions cannot be compared with the tiny test model")
    failures = mismatches(outcomes, strict=True)
    assert not failures, "\n\n".join(failures)

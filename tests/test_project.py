"""Project-level checks: the gateway stays torch-free and docker-compose only runs commands that exist."""

from __future__ import annotations

import importlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers", "onnxruntime", "cv2")


def test_gateway_import_is_torch_free() -> None:
    code = (
        "import sys; from service.gateway.app import create_app; create_app(); "
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]; print(heavy); sys.exit(1 if heavy else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _module_exists(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def test_compose_commands_exist() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"redis", "api", "worker-text", "worker-media", "flower", "companion"} <= set(services)
    redis_cmd = services["redis"]["command"]
    assert "--appendonly" in redis_cmd and redis_cmd[redis_cmd.index("--appendonly") + 1] == "yes"
    assert "healthcheck" in services["redis"]
    for name, svc in services.items():
        if name == "redis":
            continue
        cmd = svc["command"]
        assert cmd[:2] == ["python", "-m"], f"{name}: commands run python modules"
        module = cmd[2]
        assert _module_exists(module), f"{name}: module {module} missing"
        if module == "uvicorn":
            target = next(a for a in cmd[3:] if ":" in a)
            mod, attr = target.split(":")
            assert hasattr(importlib.import_module(mod), attr), f"{name}: {target} missing"
        if module == "celery":
            app_mod = cmd[cmd.index("-A") + 1]
            assert _module_exists(app_mod), f"{name}: celery app {app_mod} missing"
            if "-Q" in cmd:
                # Each Celery app consumes only queues it declares: the moderation workers' or the companion's.
                if app_mod == "companion.tasks":
                    from companion.tasks import QUEUE

                    queues = {QUEUE}
                else:
                    from service.core.queue import QUEUES

                    queues = set(QUEUES)
                assert set(cmd[cmd.index("-Q") + 1].split(",")) <= queues, f"{name}: unknown queue"
            if "flower" in cmd:
                assert _module_exists("flower")
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "torch==2.13.0" in dockerfile



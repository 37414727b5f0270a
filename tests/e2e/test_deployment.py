"""Deployment as written, without Docker. This machine has a Docker client but no engine, so
the image cannot be built and compose cannot start it. Instead:

- the Dockerfile's own instructions run here, in order, into a folder that stands for the
  image's WORKDIR, with a fresh virtualenv standing for the base image's Python (only
  ``useradd``/``USER`` are skipped: they would change this machine's users);
- the services of docker/compose.yaml, as ``docker-compose config`` renders them, then run
  from that folder with their own commands and environment (the database address aside):
  ``migrate``, ``web`` (the image's CMD) with its health check, ``worker``, and ``proxy``
  (nginx with the mounted template), and a job goes through the proxy from start to end.

What this does not exercise: the base image itself, building it, Docker's networking
(service names, the edge network's addresses), and the nginx image's own start-up scripts.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from django.conf import settings

from .harness import NGINX_TEMPLATE, NGINX_TEMPLATE_VARIABLES, ROOT, Nginx, Platform, free_port, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

DOCKERFILE = ROOT / "docker" / "Dockerfile"
COMPOSE = ROOT / "docker" / "compose.yaml"


@dataclass
class Image:
    """The image as the Dockerfile's steps left it: a folder, an environment, a command."""

    workdir: Path
    env: dict[str, str]
    cmd: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, argument) pairs, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in text.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        instruction, _, argument = (pending + line).strip().partition(" ")
        instructions.append((instruction.upper(), " ".join(argument.split())))
        pending = ""
    return instructions


def machine_env() -> dict[str, str]:
    """What a build needs from this machine (pip's index settings, proxies), nothing else:
    in particular none of the test run's Django settings."""
    keep = {"HOME", "LANG", "LC_ALL", "TMPDIR"}
    return {k: v for k, v in os.environ.items() if k in keep or k.startswith("PIP_") or k.lower().endswith("_proxy")}


def build_outside_docker(tmp: Path) -> Image:
    venv = tmp / "python"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    image = Image(workdir=tmp, env={**machine_env(), "PATH": f"{venv / 'bin'}:/usr/local/bin:/usr/bin:/bin"})
    container_workdir = "/"

    def here(text: str) -> str:
        # The image's absolute paths under WORKDIR, mapped to the folder that stands for it.
        if container_workdir == "/":
            return text
        return re.sub(rf"(?<![\w/]){re.escape(container_workdir)}(?=/|\b)", str(image.workdir), text)

    for instruction, argument in dockerfile_instructions(DOCKERFILE.read_text()):
        if instruction == "FROM":
            # The image's Python is the one this virtualenv was made from.
            assert argument == f"python:{sys.version_info.major}.{sys.version_info.minor}-slim", argument
        elif instruction == "ENV":
            for pair in shlex.split(argument):
                name, _, value = pair.partition("=")
                image.env[name] = here(value)
        elif instruction == "WORKDIR":
            container_workdir = argument
            image.workdir = tmp / "image"
            image.workdir.mkdir()
        elif instruction == "COPY":
            source, target = (
                ROOT / part if i == 0 else image.workdir / part for i, part in enumerate(argument.split())
            )
            if source.is_dir():
                shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
        elif instruction == "RUN" and argument.startswith("useradd "):
            image.skipped.append(f"RUN {argument}")
        elif instruction == "RUN":
            result = subprocess.run(
                ["bash", "-c", here(argument)],
                cwd=image.workdir,
                env=image.env,
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert result.returncode == 0, f"RUN {argument}\n{result.stdout}\n{result.stderr}"
        elif instruction == "CMD":
            image.cmd = json.loads(argument)
        elif instruction in {"USER", "EXPOSE"}:
            image.skipped.append(f"{instruction} {argument}")
        else:
            raise AssertionError(f"{instruction} is new in the Dockerfile: teach this test to run it")
    return image


def compose_services() -> dict[str, Any]:
    """docker/compose.yaml as docker-compose itself renders it (defaults filled in)."""
    if shutil.which("docker-compose") is None:
        raise AssertionError("docker-compose is not installed: apt-get install docker-compose (.ci/run does)")
    rendered = subprocess.run(
        ["docker-compose", "-f", str(COMPOSE), "config"],
        env={"PATH": os.environ["PATH"], "SECRET_KEY": "compose-test-secret"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return yaml.safe_load(rendered.stdout)["services"]


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("image")
    image = build_outside_docker(tmp)
    services = compose_services()
    platform = Platform(settings.DATABASES["default"], tmp_path_factory.mktemp("deployment-logs"))
    platform.create_database(migrate=False)  # the compose file's migrate service does it
    processes: list[subprocess.Popen] = []
    nginx: Nginx | None = None

    def service_env(name: str, **overrides: str) -> dict[str, str]:
        env = {**image.env, **{k: str(v) for k, v in services[name].get("environment", {}).items()}}
        # Compose's database is reached as "postgres"; here it is the test server.
        env["DATABASE_URL"] = platform.database_url
        return {**env, **overrides}

    def run(name: str, command: list[str], **overrides: str) -> str:
        result = subprocess.run(
            command,
            cwd=image.workdir,
            env=service_env(name, **overrides),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, f"{name}: {command}\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def spawn(name: str, command: list[str], **overrides: str) -> subprocess.Popen:
        log = open(platform.log_dir / f"{name}.log", "w")
        proc = subprocess.Popen(
            command,
            cwd=image.workdir,
            env=service_env(name, **overrides),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        processes.append(proc)
        return proc

    try:
        run("migrate", services["migrate"]["command"])
        port = free_port()
        web = spawn("web", [*image.cmd, "--bind", f"127.0.0.1:{port}", "--workers", "2"])
        base_url = f"http://127.0.0.1:{port}"

        def web_answers() -> bool:
            assert web.poll() is None, (platform.log_dir / "web.log").read_text()
            return requests.get(f"{base_url}/health", timeout=2).ok

        wait_for(web_answers, timeout=60, what="the image's gunicorn")
        spawn("worker", services["worker"]["command"], Q_WORKERS="2")
        proxy_env = services["proxy"]["environment"]
        nginx = Nginx(upstream_port=port, max_body_bytes=int(proxy_env["JOBS_MAX_BODY_BYTES"]))
        nginx.start()
        yield {
            "image": image,
            "services": services,
            "web": web,
            "base_url": base_url,
            "port": port,
            "nginx": nginx,
            "run": run,
        }
    finally:
        if nginx is not None:
            nginx.stop()
        for proc in processes:
            Platform.kill9(proc)
        platform.drop_database()


def test_the_image_has_what_the_dockerfile_promises(deployment):
    image: Image = deployment["image"]
    # collectstatic ran with the production settings into STATIC_ROOT, inside the image.
    static_root = Path(image.env["STATIC_ROOT"])
    assert static_root.is_relative_to(image.workdir)
    assert (static_root / "rest_framework" / "css" / "bootstrap.min.css").is_file()
    assert image.env["DJANGO_SETTINGS_MODULE"] == "jobplatform.settings.production"
    assert image.cmd[:3] == ["gunicorn", "-c", "docker/gunicorn.conf.py"]
    # Only the steps that would change this machine's users were left out.
    assert [step.split()[0] for step in image.skipped] == ["RUN", "USER", "EXPOSE"], image.skipped


def test_web_serves_with_production_settings_and_its_health_check_passes(deployment):
    base_url = deployment["base_url"]
    # WhiteNoise serves what collectstatic wrote (finders are off in the image).
    css = requests.get(f"{base_url}/static/rest_framework/css/bootstrap.min.css", timeout=10)
    assert css.status_code == 200 and css.headers["Content-Type"].startswith("text/css")
    health = deployment["services"]["web"]["healthcheck"]["test"]
    assert health[0] == "CMD"
    command = [part.replace("127.0.0.1:8000", f"127.0.0.1:{deployment['port']}") for part in health[1:]]
    deployment["run"]("web", command)


def test_compose_puts_the_proxy_with_the_shipped_template_in_front_of_web(deployment):
    services = deployment["services"]
    proxy, web = services["proxy"], services["web"]
    assert "ports" not in web, "gunicorn must be reachable only through the proxy"
    assert proxy["depends_on"]["web"]["condition"] == "service_healthy"
    mounts = dict(volume.split(":")[:2] for volume in proxy["volumes"])  # source:target[:mode]
    assert mounts[str(NGINX_TEMPLATE)] == "/etc/nginx/templates/default.conf.template"
    assert set(proxy["environment"]) == set(NGINX_TEMPLATE_VARIABLES)
    assert str(proxy["environment"]["WEB_UPSTREAM"]) == "web:8000"
    published = {str(p["target"]) if isinstance(p, dict) else p.split(":")[-1] for p in proxy["ports"]}
    assert published == {str(proxy["environment"]["NGINX_PORT"])}
    # The proxy and web agree on the body limit.
    assert str(proxy["environment"]["JOBS_MAX_BODY_BYTES"]) == str(web["environment"]["JOBS_MAX_BODY_BYTES"])


def test_a_job_runs_through_the_proxy_web_and_worker(deployment):
    nginx: Nginx = deployment["nginx"]
    # The documented way to a token in compose (docs/operations.md, "Docker"): issue_token in the web service.
    token = deployment["run"]("web", ["python", "manage.py", "issue_token", "deployment-test", "--quiet"]).strip()
    api = requests.Session()
    api.headers["Authorization"] = f"Token {token}"
    created = api.post(f"{nginx.base_url}/jobs", json={"type": "fibonacci", "params": {"n": 1000}}, timeout=10)
    assert created.status_code == 201, created.text
    location = created.headers["Location"]
    assert location.startswith(f"{nginx.base_url}/jobs/")
    started = time.monotonic()
    done = wait_for(
        lambda: (job := api.get(location, timeout=5).json())["status"] == "succeeded" and job,
        timeout=90,
        what="the job to finish",
    )
    assert done["result"]["digits"] == 209, (done, time.monotonic() - started)

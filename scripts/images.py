#!/usr/bin/env python3
"""Container images built here, without a registry or a Docker engine.

    scripts/images build [NAME...]     build (or reuse) the images; prints what it did
    scripts/images list                reference, tar, size, cache key of each image
    scripts/images import --address SOCKET [--namespace k8s.io] [--ctr ctr] [--force] [NAME...]
                                       build if needed, then `ctr images import` each tar
                                       that containerd does not already have (same config)
    scripts/images tar NAME            print the path of one image's tar (building it if needed)
    scripts/images archive OUT.tar --tag REF --file SRC:DEST[:MODE] ... [--entrypoint ARG ...]
                   [--cmd ARG ...] [--user UID:GID] [--env K=V ...]
                                       a one-layer image of a few files (the real node's pause
                                       image, test images); no root, no cache

Images (NAME: reference, the one users already write):
  base      locust-operator.local/base:<suite>    Debian minbase + python3 (debootstrap)
  locust    locustio/locust:<LOCUST_VERSION>     the examples' image: base + a venv with Locust
  operator  <chart image.repository>:<appVersion> the Dockerfile, built by buildah on the base
  exporter  <config metricsExporter.image>        images/locust-exporter (Go, static), nothing else
  git       <config initContainers.gitImage>      base + Debian's git, openssh-client, CA certificates
                                                  (images/git; the git init container, the tests' git server)

Each image is a docker-archive tar (manifest.json with RepoTags, a config, one
uncompressed layer tar per layer), which `ctr -n k8s.io images import` accepts.
The locust and operator images share the base image's layer. Everything is
cached under ${LOCUST_OPERATOR_CACHE:-~/.cache/locust-operator}/images by a
hash of its inputs (versions, recipe, Dockerfile, sources, package lists), so
a warm `build` only hashes the inputs. Needs root (chroot, mounts), and
installs debootstrap and buildah with apt-get when they are missing.
DEBIAN_MIRROR overrides the Debian mirror debootstrap uses.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from versions import read_versions  # scripts/versions.py: the one parser of versions.env

REPO_ROOT = Path(__file__).resolve().parent.parent
# Bump when a build recipe below changes in a way that changes an image.
RECIPE = 2
ARCH = "amd64"
DEBIAN_MIRROR = os.environ.get("DEBIAN_MIRROR", "http://deb.debian.org/debian")
# What every image built on the base needs: python3 and venv (pip comes from the
# wheel python3-venv ships). Nothing else: no apt lists, docs, man pages or locales.
BASE_PACKAGES = ("python3", "python3-venv")
# Paths dropped from the base rootfs (size; nothing at run time reads them).
BASE_PRUNE = (
    "var/cache/apt", "var/lib/apt/lists", "usr/share/doc", "usr/share/man",
    "usr/share/info", "usr/share/locale", "usr/share/lintian", "var/log",
    "etc/resolv.conf", "etc/hostname",
)
# Paths a build step may leave behind that are no part of the image.
BUILD_LEFTOVERS = ("etc/resolv.conf", "root/.cache", "tmp", "var/cache/debconf/templates.dat-old")
UNPACK_SKIP = ("dev/", "proc/", "sys/")
APT_TOOLS = {"debootstrap": "debootstrap", "buildah": "buildah", "go": None, "chroot": None,
             "unshare": None}


def log(msg: str) -> None:
    print(f"[images {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class ImageError(RuntimeError):
    """A build step failed; the message says which and why."""


# ---------------------------------------------------------------------------
# pure logic: versions, references, cache keys, archives
# ---------------------------------------------------------------------------

def cache_key(parts: Mapping[str, Any], files: Iterable[Path] = (), root: Path = REPO_ROOT) -> str:
    """A hash of named values and of files' relative paths and contents (order-free)."""
    digest = hashlib.sha256()
    digest.update(json.dumps(parts, sort_keys=True).encode())
    for path in sorted({Path(p) for p in files}):
        digest.update(b"\0" + str(path.relative_to(root)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


def source_files(root: Path, patterns: Sequence[str]) -> list[Path]:
    """Files under root matching the glob patterns, without caches and bytecode."""
    out: set[Path] = set()
    for pattern in patterns:
        for path in root.glob(pattern):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                out.add(path)
    return sorted(out)


@dataclasses.dataclass(frozen=True)
class ImageConfig:
    """The parts of an OCI image config that matter to a pod."""

    user: str = ""
    env: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    workdir: str = ""
    ports: tuple[str, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()

    def to_json(self) -> dict[str, Any]:
        config: dict[str, Any] = {"Env": list(self.env)}
        if self.user:
            config["User"] = self.user
        if self.entrypoint:
            config["Entrypoint"] = list(self.entrypoint)
        if self.cmd:
            config["Cmd"] = list(self.cmd)
        if self.workdir:
            config["WorkingDir"] = self.workdir
        if self.ports:
            config["ExposedPorts"] = {p if "/" in p else f"{p}/tcp": {} for p in self.ports}
        if self.labels:
            config["Labels"] = dict(self.labels)
        return config


def layer_members(rootfs: Path) -> Iterator[tuple[str, Path]]:
    """(archive name, path) of every entry under rootfs, parents first, sorted.

    The contents of dev/, proc/ and sys/ are left out: the runtime provides them.
    """
    for dirpath, dirnames, filenames in os.walk(rootfs):
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, rootfs)
        for name in sorted(dirnames) + sorted(filenames):
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            if any(rel.startswith(skip) for skip in UNPACK_SKIP):
                continue
            yield rel, Path(dirpath, name)


def write_layer(rootfs: Path, out: Path) -> str:
    """Write rootfs as an uncompressed layer tar (numeric owners); return its sha256."""
    with out.open("wb") as raw, tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, path in layer_members(rootfs):
            info = tar.gettarinfo(str(path), arcname=name)
            info.uname = info.gname = ""
            if info.isreg():
                with path.open("rb") as fh:
                    tar.addfile(info, fh)
            else:
                tar.addfile(info)
    return file_sha256(out)


def write_files_layer(files: Sequence[tuple[Path, str, int]], out: Path) -> str:
    """Write a layer of single files (source, path in the image, mode); return its sha256.

    For images of one static binary (the real node's pause image, test images):
    owner root, mtime 0 and sorted entries, so the same files give the same layer.
    """
    seen: set[str] = set()
    with out.open("wb") as raw, tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for src, dest, mode in sorted(files, key=lambda f: f[1]):
            name = dest.lstrip("/")
            for parent in reversed(Path(name).parents[:-1]):  # parents first, without "."
                if str(parent) not in seen:
                    seen.add(str(parent))
                    info = tarfile.TarInfo(str(parent))
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(info)
            info = tarfile.TarInfo(name)
            info.size, info.mode = src.stat().st_size, mode
            with src.open("rb") as fh:
                tar.addfile(info, fh)
    return file_sha256(out)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def image_config_json(config: ImageConfig, diff_ids: Sequence[str], history: Sequence[str]) -> bytes:
    """The image config document (OCI / Docker image spec v1)."""
    doc = {
        "architecture": ARCH,
        "os": "linux",
        "config": config.to_json(),
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{d}" for d in diff_ids]},
        "history": [{"created_by": h} for h in history],
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def write_docker_archive(out: Path, ref: str, config: ImageConfig, layers: Sequence[tuple[Path, str]],
                         history: Sequence[str]) -> str:
    """Write a docker-archive tar: manifest.json (RepoTags [ref]), the config, the layers.

    layers: (layer tar, its sha256) from the bottom up. Returns the config digest
    (the image ID containerd shows). Written to a temporary name and renamed.
    """
    cfg = image_config_json(config, [d for _, d in layers], history)
    cfg_digest = hashlib.sha256(cfg).hexdigest()
    manifest = [{
        "Config": f"{cfg_digest}.json",
        "RepoTags": [normalize_ref(ref)],
        "Layers": [f"{digest}/layer.tar" for _, digest in layers],
    }]
    tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp")  # concurrent builds: own names
    with tarfile.open(tmp, mode="w", format=tarfile.PAX_FORMAT) as tar:
        def add_bytes(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))

        add_bytes(f"{cfg_digest}.json", cfg)
        for path, digest in layers:
            tar.add(str(path), arcname=f"{digest}/layer.tar")
        add_bytes("manifest.json", json.dumps(manifest, separators=(",", ":")).encode())
        add_bytes("repositories", json.dumps(repositories(ref)).encode())
    tmp.replace(out)
    return cfg_digest


def repositories(ref: str) -> dict[str, dict[str, str]]:
    """The legacy `repositories` file: {repo: {tag: ""}} (docker load reads it)."""
    repo, _, tag = normalize_ref(ref).rpartition(":")
    return {repo: {tag: ""}}


def normalize_ref(ref: str) -> str:
    """The fully qualified reference containerd stores: docker.io/[library/] when no registry."""
    first, sep, _ = ref.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return ref
    return f"docker.io/{ref}" if sep else f"docker.io/library/{ref}"


def read_docker_archive(path: Path) -> dict[str, Any]:
    """manifest, config and layer names of a docker-archive tar (for list and tests)."""
    with tarfile.open(path) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        entry = manifest[0]
        config = json.load(tar.extractfile(entry["Config"]))  # type: ignore[arg-type]
        names = set(tar.getnames())
    return {"manifest": manifest, "config": config, "names": names}


# ---------------------------------------------------------------------------
# what to build: references and cache keys from the repository
# ---------------------------------------------------------------------------

def chart_image_ref(root: Path = REPO_ROOT) -> str:
    """The chart's default operator image: values.yaml image.repository, tag or appVersion."""
    chart = root / "charts" / "locust-operator"
    values = (chart / "values.yaml").read_text()
    block = re.search(r"^image:\n((?:[ \t]+.*\n|\s*\n)+)", values, re.M)
    if not block:
        raise ImageError("charts/locust-operator/values.yaml: no image: block")
    repo = re.search(r"^\s+repository:\s*[\"']?([^\"'\s]+)", block.group(1), re.M)
    tag = re.search(r"^\s+tag:\s*[\"']?([^\"'\s]*)", block.group(1), re.M)
    app = re.search(r"^appVersion:\s*[\"']?([^\"'\s]+)", (chart / "Chart.yaml").read_text(), re.M)
    if not repo or not app:
        raise ImageError("chart: image.repository or appVersion not found")
    return f"{repo.group(1)}:{(tag.group(1) if tag else '') or app.group(1)}"


def config_default(cls: str, field: str, root: Path = REPO_ROOT) -> str:
    """A field's default in controller/locust_operator/api/config.py, read without importing it.

    The operator's config is the one place an image reference users may override is
    written; the image built here carries that reference, so nothing else repeats it.
    """
    import ast

    tree = ast.parse((root / "controller" / "locust_operator" / "api" / "config.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == cls:
            for item in node.body:
                if (isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)
                        and item.target.id == field and isinstance(item.value, ast.Constant)):
                    return str(item.value.value)
    raise ImageError(f"config.py: {cls}.{field} default not found")


def exporter_image_ref(root: Path = REPO_ROOT) -> str:
    """MetricsExporterConfig.image's default: the exporter sidecar's image."""
    return config_default("MetricsExporterConfig", "image", root)


def git_image_ref(root: Path = REPO_ROOT) -> str:
    """InitContainersConfig.gitImage's default: the git init container's image."""
    return config_default("InitContainersConfig", "gitImage", root)


# The operator image's inputs: the Dockerfile's COPY sources (a unit test checks
# that every COPY source is covered) plus the files that decide the build.
OPERATOR_INPUTS = ("Dockerfile", ".dockerignore", "pyproject.toml", "README.md",
                   "controller/**/*", "templates/**/*", "charts/locust-operator/crds/**/*")


@dataclasses.dataclass(frozen=True)
class Image:
    name: str
    ref: str
    key: str
    parent: str | None = None

    def tar(self, cache: Path) -> Path:
        return cache / f"{self.name}-{self.key}.tar"


def go_version() -> str:
    try:
        out = subprocess.run(["go", "env", "GOVERSION"], capture_output=True, text=True, check=True,
                             env={**os.environ, "GOTOOLCHAIN": "local"})
    except (OSError, subprocess.CalledProcessError):
        return "go-missing"
    return out.stdout.strip()


def plan(root: Path = REPO_ROOT, versions: Mapping[str, str] | None = None,
         go: str | None = None) -> dict[str, Image]:
    """Every image with its reference and cache key (a key includes its parent's)."""
    v = dict(versions) if versions is not None else read_versions(root / "scripts" / "versions.env")
    suite, locust = v["DEBIAN_SUITE"], v["LOCUST_VERSION"]
    base_ref = f"locust-operator.local/base:{suite}"
    base = Image("base", base_ref, cache_key(
        {"recipe": RECIPE, "suite": suite, "packages": BASE_PACKAGES, "prune": BASE_PRUNE,
         "ref": base_ref, "arch": ARCH}, root=root))
    locust_ref = f"locustio/locust:{locust}"
    images = [
        base,
        Image("locust", locust_ref, cache_key(
            {"recipe": RECIPE, "base": base.key, "locust": locust, "ref": locust_ref},
            source_files(root, ["images/locust/*"]), root=root), "base"),
        Image("operator", chart_image_ref(root), cache_key(
            {"recipe": RECIPE, "base": base.key, "ref": chart_image_ref(root)},
            source_files(root, OPERATOR_INPUTS), root=root), "base"),
        Image("exporter", exporter_image_ref(root), cache_key(
            {"recipe": RECIPE, "go": go if go is not None else go_version(),
             "ref": exporter_image_ref(root)},
            source_files(root, ["images/locust-exporter/*"]), root=root)),
        Image("git", git_image_ref(root), cache_key(
            {"recipe": RECIPE, "base": base.key, "ref": git_image_ref(root)},
            source_files(root, ["images/git/*"]), root=root), "base"),
    ]
    return {image.name: image for image in images}


# ---------------------------------------------------------------------------
# building (root: debootstrap, chroot, buildah)
# ---------------------------------------------------------------------------

def run(cmd: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(list(cmd), check=True, text=True, **kwargs)
    except FileNotFoundError:
        raise ImageError(f"{cmd[0]}: not found") from None
    except subprocess.CalledProcessError as exc:
        tail = (exc.stderr or exc.stdout or "").strip().splitlines()[-15:]
        raise ImageError(f"{' '.join(cmd[:3])} ... failed (exit {exc.returncode})"
                         + ("".join("\n  " + line for line in tail))) from None


def ensure_tools(tools: Iterable[str]) -> None:
    """Install the Debian packages of missing tools (apt-get; update first if needed)."""
    missing = [t for t in tools if shutil.which(t) is None]
    packages = sorted({APT_TOOLS[t] for t in missing if APT_TOOLS.get(t)})
    unavailable = [t for t in missing if not APT_TOOLS.get(t)]
    if unavailable:
        raise ImageError(f"not on PATH: {', '.join(unavailable)} (install it; go comes with the machine)")
    if not packages:
        return
    log(f"apt-get install {' '.join(packages)}")
    cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(cmd, env=env, capture_output=True).returncode != 0:
        run(["apt-get", "update", "-q"], env=env, capture_output=True)
        run(cmd, env=env, capture_output=True)


def prune_rootfs(rootfs: Path) -> None:
    for rel in BASE_PRUNE:
        path = rootfs / rel
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
            path.mkdir()
        elif path.exists() or path.is_symlink():
            path.unlink()


def build_base(image: Image, out: Path, work: Path, suite: str) -> None:
    rootfs = work / "rootfs"
    log(f"base: debootstrap --variant=minbase {suite} (+{', '.join(BASE_PACKAGES)}), ~1-2 min")
    # Downloaded .debs are kept (a changed recipe need not download them again).
    debs = out.parent / f"debs-{suite}"
    debs.mkdir(exist_ok=True)
    run(["debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}",
         f"--cache-dir={debs}", suite,
         str(rootfs), DEBIAN_MIRROR], capture_output=True)
    prune_rootfs(rootfs)
    layer = work / "layer.tar"
    digest = write_layer(rootfs, layer)
    config = ImageConfig(
        env=("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"),
        cmd=("python3",),
        labels=(("org.opencontainers.image.description",
                 f"Debian {suite} minbase + {' '.join(BASE_PACKAGES)}, built by scripts/images"),))
    write_docker_archive(out, image.ref, config, [(layer, digest)],
                         [f"debootstrap --variant=minbase --include={','.join(BASE_PACKAGES)} {suite}"])


class Buildah:
    """buildah with its own vfs storage in a scratch directory (no daemon, no registry)."""

    def __init__(self, work: Path) -> None:
        self.root = work / "buildah"
        self.flags = ["--storage-driver", "vfs", "--root", str(self.root / "root"),
                      "--runroot", str(self.root / "run")]

    def __call__(self, *args: str) -> None:
        run(["buildah", *self.flags, *args], capture_output=True)

    def load(self, tar: Path) -> None:
        self("pull", "--quiet", f"docker-archive:{tar}")

    def build(self, ref: str, context: Path, containerfile: Path, build_args: Mapping[str, str],
              out: Path) -> None:
        # Fully qualified: buildah would store a short name as localhost/NAME and
        # write both names into the archive.
        ref = normalize_ref(ref)
        args = ["build", "--quiet", "--isolation", "chroot", "--pull=never", "--layers=false",
                "--network", "host", "--format", "docker", "-t", ref, "-f", str(containerfile)]
        # This machine's CA bundle for pip inside RUN (a TLS-inspecting egress proxy
        # may sign PyPI's certificate); read-only, and not part of the image.
        args += ["-v", "/etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro"]
        for key, value in build_args.items():
            args += ["--build-arg", f"{key}={value}"]
        self(*args, str(context))
        tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp")  # concurrent builds: own names
        tmp.unlink(missing_ok=True)
        self("push", "--quiet", ref, f"docker-archive:{tmp}:{ref}")
        tmp.replace(out)

    def cleanup(self) -> None:
        mounted = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()
                   if line.split()[1].startswith(str(self.root))]
        if mounted:  # never delete through a mount; say so instead
            raise ImageError(f"still mounted under {self.root}: {mounted}")
        shutil.rmtree(self.root, ignore_errors=True)


PASSWD = "root:x:0:0:root:/:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
GROUP = "root:x:0:\nnogroup:x:65534:\n"


def build_exporter(image: Image, out: Path, work: Path, cache_root: Path, buildah: Buildah) -> None:
    src = REPO_ROOT / "images" / "locust-exporter"
    context = work / "exporter-context"
    context.mkdir()
    tag = image.ref.rpartition(":")[2]
    log(f"exporter: go build (static) from {src.relative_to(REPO_ROOT)}")
    env = {**os.environ, "CGO_ENABLED": "0", "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod",
           "GOMODCACHE": os.environ.get("LOCUST_OPERATOR_GOMODCACHE", str(cache_root / "gomod")),
           "GOCACHE": os.environ.get("LOCUST_OPERATOR_GOCACHE", str(cache_root / "go-build"))}
    run(["go", "build", "-trimpath", "-ldflags", f"-s -w -X main.version={tag}",
         "-o", str(context / "locust_exporter"), "."], cwd=src, env=env, capture_output=True)
    (context / "passwd").write_text(PASSWD)
    (context / "group").write_text(GROUP)
    shutil.copy(src / "Containerfile", context / "Containerfile")
    buildah.build(image.ref, context, context / "Containerfile", {}, out)


def prune_old(cache: Path, image: Image, keep: int = 3) -> None:
    """Keep the newest `keep` tars of this image (other branches may use older keys)."""
    tars = sorted(cache.glob(f"{image.name}-*.tar"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in tars[keep:]:
        old.unlink(missing_ok=True)
        old.with_suffix(".json").unlink(missing_ok=True)


def build(names: Sequence[str], cache_root: Path) -> dict[str, Image]:
    images = plan()
    versions = read_versions(REPO_ROOT / "scripts" / "versions.env")
    wanted = set(names or images)
    unknown = wanted - set(images)
    if unknown:
        raise ImageError(f"unknown image(s): {', '.join(sorted(unknown))}; known: {', '.join(images)}")
    for name in list(wanted):  # a parent is needed to build its children
        parent = images[name].parent
        if parent and not images[name].tar(cache_root / "images").exists():
            wanted.add(parent)
    cache = cache_root / "images"
    cache.mkdir(parents=True, exist_ok=True)
    todo = [images[n] for n in images if n in wanted and not images[n].tar(cache).exists()]
    for image in images.values():
        if image.name in wanted and image not in todo:
            log(f"{image.name}: cached {image.ref} ({image.tar(cache).name})")
    if not todo:
        return images
    if os.geteuid() != 0:
        raise ImageError("building needs root (debootstrap, buildah's chroot isolation)")
    tools = {"buildah"} if any(i.name != "base" for i in todo) else set()
    if any(i.name == "base" for i in todo):
        tools.add("debootstrap")
    if any(i.name == "exporter" for i in todo):
        tools.add("go")
    ensure_tools(sorted(tools))
    work = Path(tempfile.mkdtemp(prefix="build.", dir=cache))
    buildah = Buildah(work)
    try:
        loaded: set[str] = set()
        for image in todo:
            started = time.monotonic()
            out = image.tar(cache)
            if image.name == "base":
                build_base(image, out, work, versions["DEBIAN_SUITE"])
            else:
                if image.parent and image.parent not in loaded:
                    buildah.load(images[image.parent].tar(cache))
                    loaded.add(image.parent)
                base_arg = {"BASE_IMAGE": images["base"].ref}
                if image.name == "locust":
                    log("locust: buildah build images/locust "
                        f"(pip install locust=={versions['LOCUST_VERSION']})")
                    buildah.build(image.ref, REPO_ROOT / "images" / "locust",
                                  REPO_ROOT / "images" / "locust" / "Containerfile",
                                  {**base_arg, "LOCUST_VERSION": versions["LOCUST_VERSION"]}, out)
                elif image.name == "operator":
                    log("operator: buildah build Dockerfile (BASE_IMAGE = the local base)")
                    buildah.build(image.ref, REPO_ROOT, REPO_ROOT / "Dockerfile", base_arg, out)
                elif image.name == "git":
                    log("git: buildah build images/git (apt-get install git openssh-client ca-certificates)")
                    buildah.build(image.ref, REPO_ROOT / "images" / "git",
                                  REPO_ROOT / "images" / "git" / "Containerfile", base_arg, out)
                else:
                    build_exporter(image, out, work, cache_root, buildah)
            seconds = time.monotonic() - started
            meta = {"ref": image.ref, "key": image.key, "size": out.stat().st_size,
                    "build_seconds": round(seconds, 1), "built": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
            out.with_suffix(".json").write_text(json.dumps(meta, indent=1) + "\n")
            log(f"{image.name}: built {image.ref} in {seconds:.0f}s, {out.stat().st_size / 2**20:.0f} MiB")
            prune_old(cache, image)
    finally:
        buildah.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    return images


# ---------------------------------------------------------------------------
# containerd
# ---------------------------------------------------------------------------

def archive_config_digest(tar: Path) -> str:
    """sha256:... of the image config in a docker-archive (manifest.json's Config)."""
    config = str(read_docker_archive(tar)["manifest"][0]["Config"])  # "<hex>.json"
    return "sha256:" + config.rpartition("/")[2].removesuffix(".json")


def imported_config_digest(ctr: Sequence[str], ref: str) -> str | None:
    """The config digest the image named ref has in containerd, or None."""
    listed = subprocess.run([*ctr, "images", "ls", f"name=={normalize_ref(ref)}"],
                            capture_output=True, text=True)
    rows = [line.split() for line in listed.stdout.splitlines()[1:] if line.strip()]
    if listed.returncode != 0 or not rows or len(rows[0]) < 3:
        return None
    manifest = subprocess.run([*ctr, "content", "get", rows[0][2]], capture_output=True, text=True)
    try:
        return str(json.loads(manifest.stdout)["config"]["digest"])
    except (ValueError, KeyError, TypeError):
        return None


def import_images(images: Mapping[str, Image], names: Sequence[str], cache: Path, ctr_bin: str,
                  address: str, namespace: str, force: bool = False) -> None:
    """ctr images import each tar, unless containerd already has that exact image."""
    ctr = [ctr_bin, "--address", address, "-n", namespace]
    if shutil.which(ctr_bin) is None:
        raise ImageError(f"{ctr_bin}: not found (Debian's containerd package has ctr)")
    for name in names or images:
        image, tar = images[name], images[name].tar(cache)
        if not force and imported_config_digest(ctr, image.ref) == archive_config_digest(tar):
            log(f"{name}: {image.ref} already in {address} ({namespace})")
            continue
        log(f"{name}: ctr images import {tar.name} into {address} ({namespace})")
        run([*ctr, "images", "import", str(tar)], capture_output=True)


# ---------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------

def write_files_archive(out: Path, ref: str, specs: Sequence[str], entrypoint: Sequence[str] = (),
                        cmd: Sequence[str] = (), user: str = "", env: Sequence[str] = ()) -> str:
    """`archive`: a one-layer docker-archive of files given as SRC:DEST[:MODE]; returns the config digest."""
    files = []
    for spec in specs:
        src, dest, *mode = spec.split(":")
        files.append((Path(src), dest, int(mode[0], 8) if mode else 0o644))
    config = ImageConfig(user=user, env=("PATH=/usr/local/bin:/usr/bin:/bin", *env),
                         entrypoint=tuple(entrypoint), cmd=tuple(cmd), workdir="/")
    with tempfile.TemporaryDirectory(dir=out.parent) as work:
        layer = Path(work, "layer.tar")
        digest = write_files_layer(files, layer)
        return write_docker_archive(out, ref, config, [(layer, digest)], ["scripts/images archive"])


def cache_root() -> Path:
    return Path(os.environ.get("LOCUST_OPERATOR_CACHE", Path.home() / ".cache" / "locust-operator"))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/images", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_build = sub.add_parser("build", help="build (or reuse) the images")
    p_build.add_argument("names", nargs="*")
    sub.add_parser("list", help="reference, tar, size and cache key of each image")
    p_tar = sub.add_parser("tar", help="print one image's tar path (building it if needed)")
    p_tar.add_argument("name")
    p_import = sub.add_parser("import", help="build if needed, then ctr images import each tar")
    p_import.add_argument("--address", required=True, help="containerd's grpc socket")
    p_import.add_argument("--namespace", default="k8s.io", help="containerd namespace (CRI: k8s.io)")
    p_import.add_argument("--ctr", default="ctr", help="the ctr binary")
    p_import.add_argument("--force", action="store_true", help="import even when already there")
    p_import.add_argument("names", nargs="*")
    p_archive = sub.add_parser("archive", help="write a docker-archive of a few files (one layer)")
    p_archive.add_argument("out", type=Path)
    p_archive.add_argument("--tag", required=True)
    p_archive.add_argument("--file", action="append", default=[], help="SRC:DEST[:MODE octal]")
    p_archive.add_argument("--entrypoint", nargs="+", default=())
    p_archive.add_argument("--cmd", nargs="+", default=())
    p_archive.add_argument("--user", default="")
    p_archive.add_argument("--env", action="append", default=[])
    args = parser.parse_args(argv)
    root = cache_root()
    cache = root / "images"
    try:
        if args.command == "build":
            started = time.monotonic()
            build(args.names, root)
            log(f"done in {time.monotonic() - started:.1f}s")
        elif args.command == "list":
            print(f"{'NAME':9} {'REFERENCE':45} {'SIZE':>8}  {'KEY':16}  TAR")
            for image in plan().values():
                tar = image.tar(cache)
                size = f"{tar.stat().st_size / 2**20:.0f}MiB" if tar.exists() else "-"
                print(f"{image.name:9} {image.ref:45} {size:>8}  {image.key:16}  "
                      f"{tar if tar.exists() else '(not built)'}")
        elif args.command == "tar":
            images = build([args.name], root)
            print(images[args.name].tar(cache))
        elif args.command == "import":
            images = build(args.names, root)
            import_images(images, args.names, cache, args.ctr, args.address, args.namespace, args.force)
        elif args.command == "archive":
            write_files_archive(args.out, args.tag, args.file, args.entrypoint, args.cmd, args.user,
                                args.env)
    except ImageError as exc:
        log(f"ERROR: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

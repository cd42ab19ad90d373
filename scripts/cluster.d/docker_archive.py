#!/usr/bin/env python3
"""Write a one-layer image as a docker-archive tar (``ctr images import`` reads it).

No registry, no Docker: a layer tar of the given files, an image config and a
``manifest.json`` naming the tag. Deterministic (mtime 0, sorted entries), so
the same inputs give the same image ID.

    docker_archive.py OUT.tar --tag REF --file SRC:DEST[:MODE] ... \
        [--entrypoint ARG ...] [--cmd ARG ...] [--user UID:GID] [--env K=V ...]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import tarfile
from pathlib import PurePosixPath


def _dir_entries(dest: str, seen: set[str]) -> list[tarfile.TarInfo]:
    out = []
    for parent in reversed(PurePosixPath(dest.lstrip("/")).parents):
        name = str(parent)
        if name in (".", "") or name in seen:
            continue
        seen.add(name)
        info = tarfile.TarInfo(name)
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
        out.append(info)
    return out


def layer_tar(files: list[tuple[str, str, int]]) -> bytes:
    buf = io.BytesIO()
    seen: set[str] = set()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for src, dest, mode in sorted(files, key=lambda f: f[1]):
            for info in _dir_entries(dest, seen):
                tar.addfile(info)
            data = open(src, "rb").read()  # noqa: SIM115
            info = tarfile.TarInfo(dest.lstrip("/"))
            info.size = len(data)
            info.mode = mode
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--tag", required=True)
    ap.add_argument("--file", action="append", default=[], help="SRC:DEST[:MODE octal]")
    ap.add_argument("--entrypoint", nargs="+", default=None)
    ap.add_argument("--cmd", nargs="+", default=None)
    ap.add_argument("--user", default="")
    ap.add_argument("--env", action="append", default=[])
    args = ap.parse_args()

    files = []
    for spec in args.file:
        parts = spec.split(":")
        mode = int(parts[2], 8) if len(parts) > 2 else 0o644
        files.append((parts[0], parts[1], mode))
    layer = layer_tar(files)
    layer_id = hashlib.sha256(layer).hexdigest()
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": {
            "Env": ["PATH=/usr/local/bin:/usr/bin:/bin", *args.env],
            "Entrypoint": args.entrypoint,
            "Cmd": args.cmd,
            "User": args.user,
            "WorkingDir": "/",
        },
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer_id}"]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "docker_archive.py"}],
    }
    config_bytes = json.dumps(config, sort_keys=True).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    manifest = [{"Config": config_name, "RepoTags": [args.tag], "Layers": [f"{layer_id}/layer.tar"]}]
    with tarfile.open(args.out, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in (
            (config_name, config_bytes),
            (f"{layer_id}/layer.tar", layer),
            ("manifest.json", json.dumps(manifest).encode()),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))


if __name__ == "__main__":
    main()

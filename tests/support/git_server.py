"""An in-cluster git server over smart HTTP, for tests of spec.testFiles.git with no internet.

`git_objects(namespace, files, second)` gives a ConfigMap (the files and this very
module), a Deployment `git` in the git image (initContainers.gitImage, built here by
scripts/images with python3 and git-http-backend) and a Service `git` (80 -> 8080):

    http://git.<ns>.svc.cluster.local/repo.git

At start the pod runs this module twice: `init` builds the bare repo, then `serve`
answers smart HTTP by running git-http-backend as CGI. The repo is made with git's
plumbing from fixed names, e-mails and dates, every file mode 100644, so its SHAs do
not depend on the machine: `expected_shas` runs the same `init` with the host's git
and tells the tests the SHAs in advance. The repo:

  commit 1  `files`; the annotated tag `v1` points at it (tagger as the committer)
  commit 2  only when `second` is given: commit 1's files with `second` added or
            replaced (no deletions); then `main` is ahead of `v1`
  main      the branch (HEAD) at the last commit

Fetching a commit by SHA is allowed (uploadpack.allowReachableSHA1InWant and
allowAnySHA1InWant, for protocol v0; v2 allows it anyway); pushing is not
(http.receivepack false). Only the standard library at the top: in the pod this
file runs alone with Debian's python3.
"""

from __future__ import annotations

import argparse
import dataclasses
import http.server
import io
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

NAME = "git"  # the Service and Deployment; the ConfigMap is git-server
PORT = 8080
REPO = "repo.git"
BRANCH = "main"
TAG = "v1"
CONFIG_MOUNT = "/etc/git-server"
ROOT_MOUNT = "/srv/git"
IDENTITY = {"GIT_AUTHOR_NAME": "Locust Operator Tests", "GIT_AUTHOR_EMAIL": "tests@locust-operator.invalid",
            "GIT_COMMITTER_NAME": "Locust Operator Tests",
            "GIT_COMMITTER_EMAIL": "tests@locust-operator.invalid"}
EPOCH = 1704067200  # 2024-01-01T00:00:00Z: commit n (and its tag) is dated n minutes later


@dataclasses.dataclass(frozen=True)
class RepoShas:
    """The SHAs a test asks for: v1 is the commit the tag points at (what a checkout of
    v1 shows), v1_object the annotated tag object itself, main the branch head."""

    v1: str
    v1_object: str
    main: str


# ---------------------------------------------------------------------------
# the repo: `init`, in the pod and on the host
# ---------------------------------------------------------------------------

def _git(repo: Path, *args: str, n: int = 0, data: bytes | None = None) -> str:
    """git in repo with this module's identity and the date of commit n; no user or system config."""
    date = f"{EPOCH + 60 * n} +0000"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(repo), "LC_ALL": "C",
           "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_DIR": str(repo),
           "GIT_INDEX_FILE": str(repo / "init-index"), "GIT_AUTHOR_DATE": date,
           "GIT_COMMITTER_DATE": date, **IDENTITY}
    proc = subprocess.run(["git", *args], input=data, env=env, capture_output=True, check=True)
    return proc.stdout.decode().strip()


def read_tree(directory: Path) -> dict[str, bytes]:
    """Files under directory by relative POSIX path (following the ConfigMap mount's symlinks)."""
    files = {}
    for dirpath, _, filenames in os.walk(directory, followlinks=True):
        for name in filenames:
            path = Path(dirpath, name)
            files[path.relative_to(directory).as_posix()] = path.read_bytes()
    return files


def init_repo(repo: Path, commits: Sequence[Mapping[str, bytes]]) -> RepoShas:
    """A fresh bare repo: one commit per mapping (each on top of the last), tag v1 on the
    first, main at the last; served as described above. Returns its SHAs."""
    shutil.rmtree(repo, ignore_errors=True)  # a restarted container starts over: the same SHAs
    repo.mkdir(parents=True)
    _git(repo, "init", "--quiet", "--bare", f"--initial-branch={BRANCH}")
    for key, value in (("http.receivepack", "false"), ("uploadpack.allowReachableSHA1InWant", "true"),
                       ("uploadpack.allowAnySHA1InWant", "true")):
        _git(repo, "config", key, value)
    parent: list[str] = []
    for n, files in enumerate(commits, 1):
        for path, data in sorted(files.items()):
            blob = _git(repo, "hash-object", "-w", "--stdin", data=data)
            _git(repo, "update-index", "--add", "--cacheinfo", f"100644,{blob},{path}")
        tree = _git(repo, "write-tree")
        commit = _git(repo, "commit-tree", tree, *parent, "-m", f"commit {n}", n=n)
        if n == 1:
            _git(repo, "tag", "--annotate", "--no-sign", "-m", f"{TAG}", TAG, commit, n=n)
        parent = ["-p", commit]
    _git(repo, "update-ref", f"refs/heads/{BRANCH}", parent[1])
    (repo / "init-index").unlink()
    _git(repo, "update-server-info")
    return repo_shas(repo)


def repo_shas(repo: Path) -> RepoShas:
    """The SHAs of a repo made by init_repo (or a clone of it with the tag)."""
    tag_commit, tag_object, head = _git(repo, "rev-parse", f"refs/tags/{TAG}^{{commit}}", f"refs/tags/{TAG}",
                                        f"refs/heads/{BRANCH}").split()
    return RepoShas(v1=tag_commit, v1_object=tag_object, main=head)


def _commits(files: Mapping[str, str], second: Mapping[str, str] | None) -> list[dict[str, str]]:
    for path in [*files, *(second or {})]:
        parts = PurePosixPath(path).parts
        if not parts or path.startswith("/") or ".." in parts or "\\" in path or parts[0].startswith(".."):
            raise ValueError(f"not a relative path without '..': {path!r}")
    return [dict(files)] + ([dict(second)] if second else [])


def expected_shas(files: Mapping[str, str], second: Mapping[str, str] | None = None) -> RepoShas:
    """The SHAs the pod's repo will have: the same `init` of this file, run with the host's git."""
    with tempfile.TemporaryDirectory(prefix="git-server.") as tmp:
        dirs = []
        for n, commit in enumerate(_commits(files, second), 1):
            for path, text in commit.items():
                (Path(tmp, f"c{n}") / path).parent.mkdir(parents=True, exist_ok=True)
                (Path(tmp, f"c{n}") / path).write_text(text)
            dirs.append(str(Path(tmp, f"c{n}")))
        # -I: this file's directory is not on sys.path (tests/support/operator.py is no stdlib operator).
        subprocess.run([sys.executable, "-I", __file__, "init", str(Path(tmp, REPO)), *dirs], check=True)
        return repo_shas(Path(tmp, REPO))


# ---------------------------------------------------------------------------
# smart HTTP: git-http-backend as CGI (RFC 3875)
# ---------------------------------------------------------------------------

class GitHandler(http.server.BaseHTTPRequestHandler):
    """Runs git-http-backend for each request: GET info/refs, POST git-upload-pack."""

    protocol_version = "HTTP/1.1"  # keep-alive (every response has a Content-Length), 100-continue
    project_root = "."
    backend = "git-http-backend"

    def do_GET(self) -> None:
        self.cgi()

    def do_POST(self) -> None:
        self.cgi()

    def request_body(self) -> bytes:
        """The body as sent: Content-Length bytes, or the chunks of a chunked upload."""
        if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))
        chunks = []
        while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
            chunks.append(self.rfile.read(size))
            self.rfile.readline()
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
            pass
        return b"".join(chunks)

    def cgi(self) -> None:
        body = self.request_body()
        path, _, query = self.path.partition("?")
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GIT_PROJECT_ROOT": self.project_root,
               "GIT_HTTP_EXPORT_ALL": "1", "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
               "GATEWAY_INTERFACE": "CGI/1.1", "SERVER_PROTOCOL": self.request_version,
               "REQUEST_METHOD": self.command, "PATH_INFO": urllib.parse.unquote(path),
               "QUERY_STRING": query, "CONTENT_TYPE": self.headers.get("Content-Type", ""),
               "CONTENT_LENGTH": str(len(body)), "REMOTE_ADDR": self.client_address[0]}
        # gzip request bodies (the backend inflates them) and protocol v2 (Git-Protocol: version=2).
        for header in ("Content-Encoding", "Git-Protocol"):
            if header in self.headers:
                env["HTTP_" + header.upper().replace("-", "_")] = self.headers[header]
        proc = subprocess.run([self.backend], input=body, env=env, capture_output=True)
        sys.stderr.write(proc.stderr.decode(errors="replace"))
        status, headers, payload = parse_cgi(proc.stdout) if proc.stdout else (500, [], b"backend failed\n")
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in ("content-length", "connection"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def parse_cgi(out: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
    """A CGI response: its Status (200 when absent), the other headers, the body."""
    stream = io.BytesIO(out)
    status, headers = 200, []
    while line := stream.readline().rstrip(b"\r\n"):
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "status":
            status = int(value.split()[0])
        else:
            headers.append((name.strip(), value.strip()))
    return status, headers, stream.read()


def serve(root: Path, port: int, bind: str = "0.0.0.0") -> None:
    """Serve the repos under root until killed."""
    exec_path = subprocess.run(["git", "--exec-path"], capture_output=True, text=True, check=True).stdout

    class Handler(GitHandler):
        project_root = str(root.resolve())
        backend = str(Path(exec_path.strip(), "git-http-backend"))  # Debian and Alpine differ

    server = http.server.ThreadingHTTPServer((bind, port), Handler)
    print(f"git server: {root} on http://{bind}:{port}/", file=sys.stderr, flush=True)
    server.serve_forever()


# ---------------------------------------------------------------------------
# Kubernetes objects
# ---------------------------------------------------------------------------

def repo_url(namespace: str) -> str:
    """The repo's URL in the cluster (the Service's port 80)."""
    return f"http://{NAME}.{namespace}.svc.cluster.local/{REPO}"


def git_image() -> str:
    """The operator's default git image (initContainers.gitImage): scripts/images builds it."""
    from locust_operator.api.config import InitContainersConfig

    return InitContainersConfig().gitImage


def _configmap(namespace: str, commits: Sequence[Mapping[str, str]]) -> tuple[dict[str, Any], list[Any]]:
    """ConfigMap git-server and its items: this module, and each commit's files under commits/<n>/."""
    data, items = {"git_server.py": Path(__file__).read_text()}, [{"key": "git_server.py",
                                                                    "path": "git_server.py"}]
    for n, files in enumerate(commits, 1):
        for i, (path, text) in enumerate(sorted(files.items())):
            data[f"commit{n}-{i}"] = text
            items.append({"key": f"commit{n}-{i}", "path": f"commits/{n}/{path}"})
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": f"{NAME}-server", "namespace": namespace}, "data": data}, items


def git_objects(namespace: str, files: Mapping[str, str], second: Mapping[str, str] | None = None,
                image: str | None = None) -> list[dict[str, Any]]:
    """ConfigMap git-server, Deployment git (ready once info/refs answers) and Service git
    (80 -> 8080) in namespace: kubectl apply input. The repo is http://git.<ns>.svc.cluster.local/repo.git."""
    # Imported here: this file also runs alone in the pod, where tests/ is not.
    from tests.support.probes import serving_once_up

    commits = _commits(files, second)
    configmap, items = _configmap(namespace, commits)
    module = f"{CONFIG_MOUNT}/git_server.py"
    dirs = " ".join(f"{CONFIG_MOUNT}/commits/{n}" for n in range(1, len(commits) + 1))
    script = (f"python3 {module} init {ROOT_MOUNT}/{REPO} {dirs} "
              f"&& exec python3 {module} serve {ROOT_MOUNT} --port {PORT}")
    labels = {"app": NAME}
    container = {
        "name": "git", "image": image or git_image(), "imagePullPolicy": "IfNotPresent",
        "command": ["sh", "-c", script], "ports": [{"name": "http", "containerPort": PORT}],
        **serving_once_up(f"/{REPO}/info/refs", PORT),
        "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000,
                            "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}},
        "volumeMounts": [{"name": "config", "mountPath": CONFIG_MOUNT, "readOnly": True},
                         {"name": "repo", "mountPath": ROOT_MOUNT}],
    }
    pod_spec = {"containers": [container], "terminationGracePeriodSeconds": 1,
                "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
                "volumes": [{"name": "config", "configMap": {"name": f"{NAME}-server", "items": items}},
                            {"name": "repo", "emptyDir": {"sizeLimit": "64Mi"}}]}
    return [
        configmap,
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": NAME, "namespace": namespace},
         "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "strategy": {"type": "Recreate"},
                  "template": {"metadata": {"labels": labels}, "spec": pod_spec}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": NAME, "namespace": namespace},
         "spec": {"selector": labels, "ports": [{"name": "http", "port": 80, "targetPort": PORT}]}},
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """`init REPO DIR...` (one commit per directory) or `serve ROOT [--port] [--bind]`."""
    parser = argparse.ArgumentParser(prog="git_server.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_init = sub.add_parser("init", help="make the bare repo from directories of files")
    p_init.add_argument("repo", type=Path)
    p_init.add_argument("dirs", type=Path, nargs="+")
    p_serve = sub.add_parser("serve", help="smart HTTP for the repos under ROOT")
    p_serve.add_argument("root", type=Path)
    p_serve.add_argument("--port", type=int, default=PORT)
    p_serve.add_argument("--bind", default="0.0.0.0")
    args = parser.parse_args(argv)
    if args.command == "init":
        shas = init_repo(args.repo, [read_tree(d) for d in args.dirs])
        print(f"{args.repo}: {TAG} {shas.v1} (tag object {shas.v1_object}), {BRANCH} {shas.main}",
              file=sys.stderr)
    else:
        serve(args.root, args.port, args.bind)
    return 0


if __name__ == "__main__":
    sys.exit(main())

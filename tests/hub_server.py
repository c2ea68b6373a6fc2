"""A small Hugging Face Hub stand-in for tests, on 127.0.0.1.

It stands in for the remote Hub (https://huggingface.co), which the test
machines cannot reach. It implements only what `huggingface_hub` calls for
this project, with the same routes, payloads and headers: `whoami`,
`create_repo`, README metadata validation, `upload_folder` (preupload, then a commit of regular files
sent inline as base64 NDJSON), `create_tag`, `repo_info` / `list_repo_tree`,
and file downloads by revision through `resolve` URLs carrying the headers
the client relies on (X-Repo-Commit, ETag, Content-Length). Repos live in
memory; each commit is an immutable snapshot with a 40-hex id.
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse

import yaml

TOKEN = "hf_test_token"
USER = "tester"
TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}


class Repo:
    def __init__(self, repo_type: str, private: bool, sdk: str | None):
        self.type, self.private, self.sdk = repo_type, private, sdk
        self.commits: dict[str, dict[str, bytes]] = {}
        self.messages: dict[str, str] = {}
        self.refs: dict[str, str | None] = {"main": None}


class HubState:
    def __init__(self):
        self.repos: dict[tuple[str, str], Repo] = {}
        self.lock = threading.Lock()
        self.requests: list[str] = []


class Handler(BaseHTTPRequestHandler):
    state: HubState
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep test output quiet
        pass

    # -- helpers -----------------------------------------------------------
    def _send(self, status: int, body: bytes = b"", headers: dict | None = None, head: bool = False):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _json(self, status: int, obj, headers: dict | None = None):
        self._send(status, json.dumps(obj).encode(), {"Content-Type": "application/json", **(headers or {})})

    def _error(self, status: int, message: str, code: str | None = None):
        headers = {"X-Error-Message": message}
        if code:
            headers["X-Error-Code"] = code
        self._json(status, {"error": message}, headers)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _user(self) -> str | None:
        auth = self.headers.get("Authorization", "")
        return USER if auth == f"Bearer {TOKEN}" else None

    def _repo(self, kind: str, repo_id: str) -> Repo | None:
        return self.state.repos.get((TYPES.get(kind, "model"), repo_id))

    def _resolve(self, repo: Repo, rev: str) -> str | None:
        rev = unquote(rev)
        if rev in repo.refs:
            return repo.refs[rev]
        return rev if rev in repo.commits else None

    # -- routes ------------------------------------------------------------
    def do_HEAD(self):
        self._route("HEAD")

    def do_GET(self):
        self._route("GET")

    def do_POST(self):
        self._route("POST")

    def _route(self, method: str):
        path = urlparse(self.path).path
        self.state.requests.append(f"{method} {path}")
        with self.state.lock:
            if path == "/api/whoami-v2":
                return self._whoami()
            if method == "POST" and path == "/api/repos/create":
                return self._create()
            if method == "POST" and path == "/api/validate-yaml":
                return self._validate_yaml()
            m = re.fullmatch(r"/api/(models|datasets|spaces)/([^/]+/[^/]+)/(preupload|commit|tag)/(.+)", path)
            if m and method == "POST":
                return getattr(self, f"_{m.group(3)}")(m.group(1), m.group(2), m.group(4))
            m = re.fullmatch(r"/api/(models|datasets|spaces)/([^/]+/[^/]+)(?:/revision/(.+))?", path)
            if m and method == "GET":
                return self._info(m.group(1), m.group(2), m.group(3) or "main")
            m = re.fullmatch(r"/api/(models|datasets|spaces)/([^/]+/[^/]+)/tree/([^/]+)(/.*)?", path)
            if m and method == "GET":
                return self._tree(m.group(1), m.group(2), m.group(3))
            m = re.fullmatch(r"/(?:(datasets|spaces)/)?([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
            if m and method in ("GET", "HEAD"):
                return self._file(m.group(1) or "models", m.group(2), m.group(3), unquote(m.group(4)), method == "HEAD")
        self._error(404, f"Not found: {path}")

    def _whoami(self):
        if not self._user():
            return self._error(401, "Invalid credentials in Authorization header")
        self._json(200, {"type": "user", "name": USER, "orgs": [],
                         "auth": {"accessToken": {"role": "write"}}})

    def _create(self):
        user = self._user()
        if not user:
            return self._error(401, "Invalid credentials in Authorization header")
        req = json.loads(self._body())
        namespace = req.get("organization") or user
        repo_id = f"{namespace}/{req['name']}"
        repo_type = req.get("type", "model")
        if namespace != user:
            return self._error(403, f"You don't have the rights to create a {repo_type} under the namespace \"{namespace}\"")
        url = f"http://{self.headers['Host']}/{'' if repo_type == 'model' else repo_type + 's/'}{repo_id}"
        if (repo_type, repo_id) in self.state.repos:
            return self._json(409, {"error": "You already created this repo", "url": url},
                              {"X-Error-Message": "You already created this repo"})
        self.state.repos[(repo_type, repo_id)] = Repo(repo_type, bool(req.get("private")), req.get("sdk"))
        self._json(200, {"url": url, "name": repo_id, "id": repo_id})

    def _validate_yaml(self):
        content = json.loads(self._body())["content"]
        m = re.match(r"^---\n(.*?)\n---", content, re.S)
        try:
            meta = yaml.safe_load(m.group(1)) if m else {}
        except yaml.YAMLError as e:
            return self._json(400, {"errors": [{"message": f"Invalid YAML: {e}"}]})
        if not isinstance(meta, dict):
            return self._json(400, {"errors": [{"message": "Metadata must be a mapping"}]})
        self._json(200, {"warnings": [] if meta else [{"message": "Empty metadata"}]})

    def _writable(self, kind: str, repo_id: str) -> Repo | None:
        if not self._user():
            self._error(401, "Invalid credentials in Authorization header")
            return None
        repo = self._repo(kind, repo_id)
        if repo is None:
            self._error(404, "Repository not found", "RepoNotFound")
            return None
        if not repo_id.startswith(f"{USER}/"):
            self._error(403, "You don't have write access to this repo")
            return None
        return repo

    def _preupload(self, kind, repo_id, rev):
        if self._writable(kind, repo_id) is None:
            return
        files = json.loads(self._body())["files"]
        self._json(200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                                   for f in files]})

    def _commit(self, kind, repo_id, rev):
        if (repo := self._writable(kind, repo_id)) is None:
            return
        lines = [json.loads(line) for line in self._body().splitlines() if line.strip()]
        parent = repo.refs.get(unquote(rev))
        files = dict(repo.commits.get(parent, {})) if parent else {}
        summary = ""
        for line in lines:
            key, value = line["key"], line["value"]
            if key == "header":
                summary = value.get("summary", "")
            elif key == "file":
                files[value["path"]] = base64.b64decode(value["content"])
            elif key == "deletedFile":
                files.pop(value["path"], None)
            else:
                return self._error(400, f"unsupported commit operation {key}")
        digest = hashlib.sha1((parent or "").encode() + summary.encode())
        for p in sorted(files):
            digest.update(p.encode() + hashlib.sha1(files[p]).digest())
        sha = digest.hexdigest()
        repo.commits[sha], repo.messages[sha] = files, summary
        repo.refs[unquote(rev)] = sha
        prefix = "" if kind == "models" else f"{kind}/"
        self._json(200, {"commitUrl": f"http://{self.headers['Host']}/{prefix}{repo_id}/commit/{sha}",
                         "commitOid": sha, "pullRequestUrl": None})

    def _tag(self, kind, repo_id, rev):
        if (repo := self._writable(kind, repo_id)) is None:
            return
        tag = json.loads(self._body())["tag"]
        repo.refs[tag] = self._resolve(repo, rev)
        self._json(200, {})

    def _readable(self, kind, repo_id, rev):
        """(repo, commit) for a read, or None after sending the Hub's 404."""
        repo = self._repo(kind, repo_id)
        if repo is None or (repo.private and not self._user()):
            self._error(404, "Repository not found", "RepoNotFound")
            return None
        sha = self._resolve(repo, rev)
        if sha is None:
            self._error(404, f"Invalid rev id: {rev}", "RevisionNotFound")
            return None
        return repo, sha

    def _info(self, kind, repo_id, rev):
        if (found := self._readable(kind, repo_id, rev)) is None:
            return
        repo, sha = found
        self._json(200, {"id": repo_id, "sha": sha, "private": repo.private, "sdk": repo.sdk,
                         "siblings": [{"rfilename": p, "size": len(b)} for p, b in sorted(repo.commits[sha].items())],
                         "lastModified": "2026-01-01T00:00:00.000Z"})

    def _tree(self, kind, repo_id, rev):
        if (found := self._readable(kind, repo_id, rev)) is None:
            return
        repo, sha = found
        self._json(200, [{"type": "file", "path": p, "size": len(b), "oid": _blob_id(b)}
                         for p, b in sorted(repo.commits[sha].items())])

    def _file(self, kind, repo_id, rev, filename, head):
        if (found := self._readable(kind, repo_id, rev)) is None:
            return
        repo, sha = found
        content = repo.commits[sha].get(filename)
        if content is None:
            return self._error(404, f"Entry not found: {filename}", "EntryNotFound")
        self._send(200, content, {"X-Repo-Commit": sha, "ETag": f'"{_blob_id(content)}"',
                                  "Content-Type": "application/octet-stream"}, head=head)


def _blob_id(content: bytes) -> str:
    """Git's blob id, what the Hub reports as the ETag of a regular file."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


class FakeHub:
    """Start with `FakeHub().start()`; `.endpoint` is its base URL."""

    def __init__(self, port: int = 0):
        self.state = HubState()
        handler = type("BoundHandler", (Handler,), {"state": self.state})
        self.server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> "FakeHub":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

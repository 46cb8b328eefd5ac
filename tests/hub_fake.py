"""A local stand-in for the Hugging Face hub's file endpoint, for testing hbkit's hub downloads (MIRACL, mMARCO)."""


class FakeHub:
    """A local stand-in for huggingface.co's file endpoint (``/datasets/<repo>/resolve/<revision>/<path>``, HEAD and
    GET, with the headers huggingface_hub reads: X-Repo-Commit, ETag, Content-Length; a missing file answers 404
    with ``X-Error-Code: EntryNotFound``, another revision ``RevisionNotFound``), serving release files from a
    folder per repository. hbkit's own download path runs against it through ``HF_ENDPOINT``."""

    def __init__(self, repos: dict, revisions: dict):
        import hashlib
        import http.server
        import threading

        hub = self
        self.requests = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _answer(self, body: bool):
                parts = self.path.split("?")[0].split("/")
                hub.requests.append((self.command, self.path))
                if len(parts) < 7 or parts[1] != "datasets" or parts[4] != "resolve":
                    return self._error(404, "RepoNotFound")
                repo, rev, rel = f"{parts[2]}/{parts[3]}", parts[5], "/".join(parts[6:])
                if repo not in repos:
                    return self._error(404, "RepoNotFound")
                if rev != revisions[repo]:
                    return self._error(404, "RevisionNotFound")
                f = repos[repo] / rel
                if not f.is_file():
                    return self._error(404, "EntryNotFound")
                blob = f.read_bytes()
                self.send_response(200)
                self.send_header("X-Repo-Commit", revisions[repo])
                self.send_header("ETag", f'"{hashlib.sha256(blob).hexdigest()}"')
                self.send_header("Content-Length", str(len(blob)))
                self.end_headers()
                if body:
                    self.wfile.write(blob)

            def _error(self, code, kind):
                self.send_response(code)
                self.send_header("X-Error-Code", kind)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_HEAD(self):
                self._answer(False)

            def do_GET(self):
                self._answer(True)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


def hub_run(tmp_path, hub, code):
    """Run ``code`` in a fresh interpreter that reaches the hub only through ``hub`` (online: no HF_HUB_OFFLINE)."""
    import os
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HBKIT_DATA_DIR", "HBKIT_OFFLINE")}
    env.update(HF_ENDPOINT=hub.url, HBKIT_CACHE=str(tmp_path / "cache"), HF_HOME=str(tmp_path / "hf"),
               HF_HUB_DISABLE_TELEMETRY="1")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)

"""Shared helpers of the example services: one HTTP server per service, /health and /version.

Python's standard library only, so the demo needs no build step and no network for the app
(the suite's Rust binaries are what the demo builds). Each service reads its port from the
environment (`<NAME>_PORT`, set in the deploy root's shared `.env`) and its version from the
release's VERSION file.
"""

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

RELEASE = Path(__file__).resolve().parent.parent


def version():
    """The release's version line (git sha and build time), read once at start."""
    try:
        return (RELEASE / "VERSION").read_text().splitlines()[0].strip()
    except (OSError, IndexError):
        return "unknown"


VERSION = version()


class Handler(BaseHTTPRequestHandler):
    """Routes GET paths to the service's handlers; /health and /version are common."""

    service = "service"
    routes = {}
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 - the stdlib's signature
        sys.stderr.write("%s %s\n" % (self.service, format % args))

    def send_body(self, status, content_type, body):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def send_json(self, status, value):
        self.send_body(status, "application/json", json.dumps(value) + "\n")

    def do_GET(self):  # noqa: N802 - the stdlib's name
        path = self.path.split("?", 1)[0]
        if path == "/health":
            self.send_json(200, {"status": "ok", "service": self.service, "version": VERSION})
        elif path == "/version":
            self.send_body(200, "text/plain", VERSION + "\n")
        elif path in self.routes:
            self.routes[path](self)
        else:
            self.send_json(404, {"error": "not found", "path": path})


def serve(service, routes):
    """Serves `routes` (path -> handler(request)) on 127.0.0.1:$<SERVICE>_PORT until killed."""
    port = int(os.environ["%s_PORT" % service.upper()])
    handler = type(service, (Handler,), {"service": service, "routes": routes})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    sys.stderr.write("%s %s listening on 127.0.0.1:%d\n" % (service, VERSION, port))
    sys.stderr.flush()
    server.serve_forever()

#!/usr/bin/env python3
"""gateway: the entry point; serves the frontend, /api/health (its upstreams too) and the
bundles descriptor. It refuses to start while memory is down, which is why restarts go in
dependency order."""

import json
import os
import sys
import urllib.request

import service

FRONTEND = service.RELEASE / "frontend" / "dist"
BUNDLES = service.RELEASE / "deploy" / "env" / "bundles.json"


def upstream(name):
    url = "http://127.0.0.1:%s/health" % os.environ["%s_PORT" % name.upper()]
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return json.load(response)
    except OSError as error:
        return {"status": "down", "error": str(error)}


def health(request):
    upstreams = {name: upstream(name) for name in ("memory", "telemetry")}
    ok = all(value.get("status") == "ok" for value in upstreams.values())
    request.send_json(
        200 if ok else 503,
        {"status": "ok" if ok else "degraded", "version": service.VERSION, "upstreams": upstreams},
    )


def index(request):
    request.send_body(200, "text/html", (FRONTEND / "index.html").read_bytes())


def bundles(request):
    request.send_body(200, "application/json", BUNDLES.read_bytes())


if __name__ == "__main__":
    if upstream("memory").get("status") != "ok":
        sys.exit("gateway: memory is not running; restart memory first")
    service.serve("gateway", {"/": index, "/api/health": health, "/api/bundles": bundles})

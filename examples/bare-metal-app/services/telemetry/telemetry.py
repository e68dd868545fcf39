#!/usr/bin/env python3
"""telemetry: a server-sent events stream of `telemetry` events, one every 200 ms."""

import json
import time

import service

EVENT = "telemetry"


def stream(request):
    request.send_response(200)
    request.send_header("Content-Type", "text/event-stream")
    request.send_header("Cache-Control", "no-cache")
    request.send_header("Connection", "close")
    request.end_headers()
    request.close_connection = True
    sequence = 0
    try:
        while sequence < 300:
            # A comment line keeps proxies from timing out; it is not an event.
            request.wfile.write(b": heartbeat\n\n")
            payload = json.dumps({"seq": sequence, "version": service.VERSION})
            request.wfile.write(("event: %s\ndata: %s\n\n" % (EVENT, payload)).encode())
            request.wfile.flush()
            sequence += 1
            time.sleep(0.2)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the client went away


if __name__ == "__main__":
    service.serve("telemetry", {"/events": stream})

#!/usr/bin/env python3
"""memory: the lowest service; everything else depends on it (restarted first)."""

import service

NOTES = {"greeting": "hello from memory"}


def notes(request):
    request.send_json(200, NOTES)


if __name__ == "__main__":
    service.serve("memory", {"/api/notes": notes})

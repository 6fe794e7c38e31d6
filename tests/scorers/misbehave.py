#!/usr/bin/env python3
"""Scorers that misbehave on purpose, for selfplay's tests: `misbehave.py MODE` as a process,
`misbehave.py --http PORT_FILE MODE` as an HTTP service on a free loopback port (written to
PORT_FILE). Modes: good, hang, crash, garbage, out_of_order, out_of_range, crash_once, status_500,
count_wrong, flood_stdout (an endless answer line), flood_stderr (megabytes of stderr, then good
answers), flood (HTTP: an endless body)."""

import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def answer(mode, request, state):
    rid = request["id"]
    if mode == "out_of_order":
        rid = rid + "-not-mine"
    value = 1.7 if mode == "out_of_range" else 0.25
    return {"id": rid, "score": value}


def process(mode):
    state = {"n": 0}
    marker = os.environ.get("MISBEHAVE_MARKER")
    for line in sys.stdin:
        if not line.strip():
            continue
        state["n"] += 1
        if mode == "hang":
            time.sleep(3600)
        if mode == "crash":
            sys.exit(3)
        if mode == "crash_once" and marker and not os.path.exists(marker):
            open(marker, "w").close()
            sys.exit(4)
        if mode == "flood_stdout":
            chunk = "x" * 65536
            while True:
                sys.stdout.write(chunk)
        if mode == "flood_stderr":
            for _ in range(2000):
                sys.stderr.write("e" * 200 + "\n")
            sys.stderr.write("f" * (2 << 20) + "\n")
            sys.stderr.flush()
        if mode == "garbage":
            sys.stdout.write("this is not json\n")
        else:
            sys.stdout.write(json.dumps(answer(mode, json.loads(line), state)) + "\n")
        sys.stdout.flush()


def http(port_file, mode):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if mode == "hang":
                time.sleep(3600)
            if mode == "flood":
                self.send_response(200)
                self.end_headers()
                chunk = b"x" * 65536
                try:
                    while True:
                        self.wfile.write(chunk)
                except OSError:
                    return
            if mode == "bearer" and self.headers.get("Authorization") != "Bearer s3cret-token":
                self.send_response(401)
                self.end_headers()
                self.wfile.write(b"no token")
                return
            if mode == "redirect" and self.path != "/elsewhere":
                self.send_response(307)
                self.send_header("Location", "/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if mode == "status_500":
                self.send_response(500)
                self.end_headers()
                self.wfile.write(b"internal error")
                return
            if mode == "garbage":
                data = b"<html>not json</html>"
            else:
                scores = [answer(mode, r, {}) for r in body["problems"]]
                if mode == "count_wrong":
                    scores = scores[:-1]
                data = json.dumps({"scores": scores}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(port_file + ".tmp", "w") as f:
        f.write(str(server.server_port))
    os.rename(port_file + ".tmp", port_file)
    server.serve_forever()


if __name__ == "__main__":
    if sys.argv[1] == "--http":
        http(sys.argv[2], sys.argv[3])
    else:
        process(sys.argv[1])

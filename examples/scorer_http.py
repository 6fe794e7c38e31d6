#!/usr/bin/env python3
"""An interestingness scorer for selfplay as an HTTP service (Python standard library only).

selfplay POSTs {"problems": [request, ...]} to the configured URL, each request as described in
scorer_process.py, and expects {"scores": [{"id": ..., "score": ..., "reason": ...}, ...]}: one
answer per problem, in order, scores in [0, 1].

Run it:      python3 examples/scorer_http.py --port 8765
Plug it in:

    [[scorers]]
    kind = "http"
    name = "structure-http"
    url = "http://127.0.0.1:8765/score"

It listens on 127.0.0.1 only, and scores as scorer_process.py does.
"""

import argparse
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from scorer_process import score  # noqa: E402


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        try:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length))
            scores = []
            for request in body["problems"]:
                value, reason = score(request)
                scores.append({"id": request["id"], "score": value, "reason": reason})
            data = json.dumps({"scores": scores}).encode()
            self.send_response(200)
        except (ValueError, KeyError, TypeError) as e:
            data = json.dumps({"error": str(e)}).encode()
            self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt, *args):
        sys.stderr.write("scorer_http: " + (fmt % args) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    print("listening on http://%s:%d/" % (args.host, server.server_port), flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

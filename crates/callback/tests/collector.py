#!/usr/bin/env python3
"""A real HTTP collector for kcap-callback's tests.

  collector.py PORT LOG flaky N   answers 503 to the first N POSTs, then 200; logs
                                  each accepted body as one line of LOG
  collector.py PORT LOG silent    reads each request and never answers
"""
import http.server
import sys
import threading
import time

port, log, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
failures = int(sys.argv[4]) if mode == "flaky" else 0
lock = threading.Lock()
seen = [0]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if mode == "silent":
            time.sleep(600)
            return
        with lock:
            seen[0] += 1
            fail = seen[0] <= failures
            if not fail:
                with open(log, "ab") as f:
                    f.write(body + b"\n")
        self.send_response(503 if fail else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
server.daemon_threads = True
server.serve_forever()

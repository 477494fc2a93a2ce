"""A partner's webhook receiver for the tests: verifies every delivery with
the off-the-shelf `standardwebhooks` library (not our code), records it, and
answers 503 to the first `fail` deliveries (a receiver that is down, then
recovers). Prints `PORT <n>` once listening.

POST /configure {"secret", "fail", "clockOffset"} sets it up; GET / returns
what it received. `clockOffset` (seconds) is how far the tests' clock runs
ahead of real time: the library refuses timestamps more than five minutes
from its own clock, and the tests move theirs hours ahead to reach retries.
"""
import json
import sys
import threading
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import standardwebhooks.webhooks as library
from standardwebhooks.webhooks import Webhook

state = {"secret": None, "fail": 0, "clockOffset": 0, "received": []}
lock = threading.Lock()


class ReceiverClock(datetime):
    @classmethod
    def now(cls, tz=None):
        return datetime.now(tz) + timedelta(seconds=state["clockOffset"])


library.datetime = ReceiverClock


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, status, value=None):
        data = b"" if value is None else json.dumps(value).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        with lock:
            self.reply(200, state["received"])

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        if self.path == "/configure":
            with lock:
                state.update(json.loads(body))
            return self.reply(204)
        with lock:
            try:
                Webhook(state["secret"]).verify(body, dict(self.headers.items()))
                verified, error = True, None
            except Exception as e:
                verified, error = False, f"{type(e).__name__}: {e}"
            failing = state["fail"] > 0
            if failing:
                state["fail"] -= 1
            status = 503 if failing else 200
            state["received"].append(
                {
                    "id": self.headers.get("webhook-id"),
                    "timestamp": self.headers.get("webhook-timestamp"),
                    "verified": verified,
                    "error": error,
                    "answered": status,
                    "body": json.loads(body),
                }
            )
        self.reply(status, {"received": not failing})


server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0), Handler)
print("PORT", server.server_address[1], flush=True)
server.serve_forever()

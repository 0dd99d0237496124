"""(5) Two services, one session: an API service hands a case to a worker over HTTP.

Service A opens the session and a run, and calls service B (a separate
process) over plain HTTP, with httpx2 (which the openai SDK installs).
OpenTelemetry's default W3C propagators carry the trace and the alephant
baggage; B extracts them, opens its own run (whose parent is A's run), and
calls the gateway. Both processes' gateway calls carry A's session id, and B's
spans join A's trace.

    python examples/two_services.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx2  # the HTTP client the openai SDK installs
from opentelemetry import context, propagate

import alephant_otel
from alephant_otel import current, run, session


class Worker(BaseHTTPRequestHandler):
    """Service B: continues the caller's session for one task."""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        token = context.attach(propagate.extract(dict(self.headers.items())))
        try:
            with run(agent_id="worker"):
                ids = current()
                with httpx2.Client() as client:
                    client.post(
                        os.environ["ALEPHANT_GATEWAY_URL"].split(",")[0] + "/v1/chat/completions",
                        headers={"authorization": "Bearer " + os.environ.get("ALEPHANT_VIRTUAL_KEY", "sk-local")},
                        json={"model": "openai/gpt-4o-mini",
                              "messages": [{"role": "user", "content": json.loads(body)["task"]}]},
                    ).raise_for_status()
        finally:
            context.detach(token)
        payload = json.dumps({"session_id": ids.session_id, "run_id": ids.run_id,
                              "parent_run_id": ids.parent_run_id}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def serve_worker() -> None:
    alephant_otel.configure()  # gateway and exporters from the environment
    server = ThreadingHTTPServer(("127.0.0.1", 0), Worker)
    print(server.server_address[1], flush=True)  # tell the parent our port
    server.serve_forever()


def main() -> None:
    from _gateway import gateway

    with gateway() as gw:
        os.environ["ALEPHANT_GATEWAY_URL"] = gw.url
        alephant_otel.configure(gateway_url=gw.url)
        worker = subprocess.Popen([sys.executable, __file__, "worker"], stdout=subprocess.PIPE, text=True,
                                  env={**os.environ, "OTEL_SERVICE_NAME": "worker"})
        try:
            assert worker.stdout is not None
            port = int(worker.stdout.readline())
            with session(name="Escalated ticket", path="/support/escalate"), run(agent_id="api") as a:
                with httpx2.Client() as client:
                    client.post(gw.url + "/v1/chat/completions",
                                headers={"authorization": f"Bearer {gw.api_key}"},
                                json={"model": "openai/gpt-4o-mini",
                                      "messages": [{"role": "user", "content": "Classify this ticket"}]})
                    b = client.post(f"http://127.0.0.1:{port}/task", json={"task": "Draft the reply"}).json()
            print("service A:", {"session_id": a.session_id, "run_id": a.run_id})
            print("service B:", b)
            gw.print_received()
        finally:
            worker.terminate()
            worker.wait(timeout=10)


if __name__ == "__main__":
    serve_worker() if sys.argv[1:] == ["worker"] else main()

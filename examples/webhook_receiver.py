"""A minimal webhook receiver for the moderation service, standard library + moderation_client only.

    MOD_WEBHOOK_SECRETS=whsec_new,whsec_old python examples/webhook_receiver.py --port 8080

Give both secrets while a rotation's grace period lasts (new first is not required; any order works), then
drop the old one. Each verified delivery is printed as one JSON line; a forged, stale or malformed one is
answered 400 and ignored. Answer quickly with a 2xx and do slow work elsewhere: the service retries on
timeouts, 5xx and 429, so a slow receiver sees the same event again (handle events idempotently, keyed on the
moderation id and its `updated_at`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from moderation_client import SIGNATURE_HEADER, WebhookEvent, WebhookVerificationError, WebhookVerifier

MAX_BODY_BYTES = 1024 * 1024  # deliveries are one moderation document; refuse anything far larger


def make_server(verifier: WebhookVerifier, on_event: Callable[[WebhookEvent], None], host: str = "127.0.0.1",
                port: int = 8080) -> ThreadingHTTPServer:
    """An HTTP server that verifies each POST and hands authentic events to `on_event`."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            length = int(self.headers.get("content-length") or 0)
            if length > MAX_BODY_BYTES:
                self._answer(413, {"error": "body_too_large"})
                return
            body = self.rfile.read(length)  # the raw bytes: the signature covers exactly these
            try:
                event = verifier.parse(body, self.headers.get(SIGNATURE_HEADER))
            except WebhookVerificationError as exc:
                self._answer(400, {"error": exc.reason})
                return
            on_event(event)
            self._answer(200, {"ok": True})

        def _answer(self, status: int, payload: dict[str, object]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's signature
            pass

    return ThreadingHTTPServer((host, port), Handler)


def _print_event(event: WebhookEvent) -> None:
    m = event.moderation
    print(json.dumps({"event": event.event, "id": m.id, "external_id": m.external_id, "status": m.status,
                      "decision": m.decision, "flagged": m.flagged}), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Verify and print moderation webhook deliveries.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--tolerance-s", type=int, default=300, help="accepted clock skew / replay window")
    args = parser.parse_args(argv)
    secrets = [s.strip() for s in os.environ.get("MOD_WEBHOOK_SECRETS", "").split(",") if s.strip()]
    if not secrets:
        print("set MOD_WEBHOOK_SECRETS to the tenant's secret (comma-separated during a rotation)", file=sys.stderr)
        return 2
    server = make_server(WebhookVerifier(secrets, tolerance_s=args.tolerance_s), _print_event, args.host, args.port)
    print(f"listening on http://{args.host}:{server.server_address[1]}/", file=sys.stderr)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

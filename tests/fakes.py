"""Local fake servers that speak the wire format of the paid services, with knobs for their failures."""

import base64
import io
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from PIL import Image


class FakeService:
    """A real HTTP server on 127.0.0.1. `faults` are applied to the next requests in turn: an HTTP status,
    "malformed" (a 200 whose body is not JSON) or "hang" (answer after `hang_seconds`)."""

    def __init__(self):
        self.requests: list[dict] = []
        self.faults: list = []
        self.hang_seconds = 3.0
        service = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                service.requests.append({"method": self.command, "path": self.path, "headers": dict(self.headers),
                                         "body": body})  # fmt: skip
                fault = service.faults.pop(0) if service.faults else None
                if fault == "hang":
                    time.sleep(service.hang_seconds)
                if isinstance(fault, int):
                    status, content_type, payload = fault, "application/json", b'{"detail": "injected failure"}'
                elif fault == "malformed":
                    status, content_type, payload = 200, "application/json", b"{not json"
                else:
                    status, content_type, payload = service.handle(self.command, self.path, self.headers, body)
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _serve

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def handle(self, method: str, path: str, headers, body: bytes) -> tuple[int, str, bytes]:
        raise NotImplementedError

    def count(self, path: str) -> int:
        return sum(1 for r in self.requests if r["path"].startswith(path))

    def close(self):
        self.server.shutdown()


def json_answer(status: int, value) -> tuple[int, str, bytes]:
    return status, "application/json", json.dumps(value).encode()


class FakePixellab(FakeService):
    """POST /v1/generate-image-pixflux with a Bearer key; answers {"image": {"type": "base64", "base64": ...}}."""

    KEY = "pixellab-test-key"

    def handle(self, method, path, headers, body):
        if path != "/v1/generate-image-pixflux" or method != "POST":
            return json_answer(404, {"detail": "Not Found"})
        if headers.get("Authorization") != f"Bearer {self.KEY}":
            return json_answer(401, {"detail": "Invalid API token"})
        request = json.loads(body)
        size = request.get("image_size") or {}
        if not request.get("description") or not (
            16 <= size.get("width", 0) <= 400 and 16 <= size.get("height", 0) <= 400
        ):
            return json_answer(422, {"detail": [{"loc": ["body", "image_size"], "msg": "invalid"}]})
        image = Image.new("RGB", (size["width"], size["height"]), (200, 30, 90))
        out = io.BytesIO()
        image.save(out, format="PNG")
        return json_answer(200, {"image": {"type": "base64", "base64": base64.b64encode(out.getvalue()).decode()},
                                 "usage": {"type": "usd", "usd": 0.007}})  # fmt: skip

"""Local fake servers that speak the wire format of the paid services, with knobs for their failures."""

import base64
import io
import json
import random
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from PIL import Image


class QuietServer(ThreadingHTTPServer):
    """Clients that give up (timeouts, killed workers) are part of the tests: no traceback for them."""

    daemon_threads = True

    def handle_error(self, request, client_address):
        import sys

        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


class FakeService:
    """A real HTTP server on 127.0.0.1. `faults` are applied to the next requests in turn: an HTTP status,
    "malformed" (a 200 whose body is not JSON), "hang" (answer after `hang_seconds`), "drop" (no answer at all
    after `hang_seconds`, and no work done) or "lost" (the work is done — and would be charged — but the connection
    drops before the answer). At random, `failure_rate` of requests answer 503, `drop_rate` are dropped and
    `lost_rate` lose their answer. `delay` slows every request; `completed` counts the requests whose work was done."""

    def __init__(self, failure_rate: float = 0.0, seed: int = 0, drop_rate: float = 0.0, lost_rate: float = 0.0):
        self.requests: list[dict] = []
        self.faults: list = []
        self.hang_seconds = 3.0
        self.delay = 0.0
        self.completed: list[tuple[str, str]] = []
        self.failure_rate, self.drop_rate, self._rng = failure_rate, drop_rate, random.Random(seed)
        self.lost_rate = lost_rate
        service = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                service.requests.append({"method": self.command, "path": self.path, "headers": dict(self.headers),
                                         "body": body})  # fmt: skip
                fault = service.faults.pop(0) if service.faults else None
                draw = service._rng.random()
                if fault is None and draw < service.failure_rate:
                    fault = 503
                elif fault is None and draw < service.failure_rate + service.drop_rate:
                    fault = "drop"
                elif fault is None and draw < service.failure_rate + service.drop_rate + service.lost_rate:
                    fault = "lost"
                time.sleep(service.delay)
                if fault in ("hang", "drop"):
                    time.sleep(service.hang_seconds)
                if fault == "drop":
                    self.close_connection = True
                    return
                if isinstance(fault, int):
                    status, content_type, payload = fault, "application/json", b'{"detail": "injected failure"}'
                elif fault == "malformed":
                    status, content_type, payload = 200, "application/json", b"{not json"
                else:
                    status, content_type, payload = service.handle(self.command, self.path, self.headers, body)
                    if status < 300:
                        service.completed.append((self.command, self.path.split("?")[0]))
                if fault == "lost":
                    self.close_connection = True
                    return
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _serve

            def log_message(self, *args):
                pass

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def handle(self, method: str, path: str, headers, body: bytes) -> tuple[int, str, bytes]:
        raise NotImplementedError

    def count(self, path: str) -> int:
        return sum(1 for r in self.requests if r["path"].startswith(path))

    def done(self, method: str, path_prefix: str) -> int:
        """How many requests of this kind did their work (answered 2xx, not a fault)."""
        return sum(1 for m, p in self.completed if m == method and p.startswith(path_prefix))

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
        if headers.get("Authorization") != f"Bearer {self.KEY}":  # like some APIs, it echoes what it was sent
            return json_answer(401, {"detail": f"Invalid API token: {headers.get('Authorization', '')}"})
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


class FakeSongService(FakeService):
    """The AI Song Generator service: lyrics, song jobs that finish after `ready_after` seconds, partial audio while
    generating, `Idempotency-Key` honoured. Knobs: `job_status` (e.g. -1 for a content-policy refusal),
    `stall` (jobs never finish), `submit_delays` (accept the job, answer late)."""

    KEY = "songgen-test-key"

    def __init__(self, audio: bytes, ready_after: float = 0.5, failure_rate: float = 0.0, seed: int = 0):
        super().__init__(failure_rate, seed)
        self.audio, self.ready_after = audio, ready_after
        self.jobs: dict[str, dict] = {}
        self.by_key: dict[str, list[str]] = {}
        self.job_status: int | None = None
        self.stall = False
        self.submit_delays: list[float] = []
        self.audio_type = "audio/mpeg"

    def handle(self, method, path, headers, body):
        from urllib.parse import parse_qs, urlsplit

        parts = urlsplit(path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if parts.path.startswith("/audio/"):
            return 200, self.audio_type, self.audio
        if headers.get("Authorization") != f"Bearer {self.KEY}":
            return json_answer(401, {"error": "unauthorized"})
        if parts.path == "/api/lyrics" and method == "POST":
            prompt = json.loads(body)["prompt"]
            return json_answer(200, {"title": f"Song of {prompt[:20]}", "lyrics": "[Verse]\nla la\n\n[Chorus]\noh",
                                     "style": ["pop", "dreamy"]})  # fmt: skip
        if parts.path == "/api/songs" and method == "POST":
            key = headers.get("Idempotency-Key")
            if key not in self.by_key:
                ids = [f"{query['source']}-{uuid.uuid4().hex[:16]}" for _ in range(2)]
                for music_id in ids:
                    self.jobs[music_id] = {"created": time.time(), "status": self.job_status}
                self.by_key[key] = ids
            time.sleep(self.submit_delays.pop(0) if self.submit_delays else 0)
            return json_answer(200, self.by_key[key])
        if parts.path == "/api/songs" and method == "GET":
            answer = []
            for music_id in query["ids"].split(","):
                job = self.jobs.get(music_id)
                if job is None:
                    return json_answer(404, {"error": f"unknown song {music_id}"})
                age = time.time() - job["created"]
                if job["status"] is not None:
                    status = job["status"]
                elif self.stall or age < self.ready_after:
                    status = 1 if age < self.ready_after / 2 and not self.stall else 2
                else:
                    status = 4
                audio = f"{self.url}/audio/{music_id}.mp3" if status >= 2 else None
                answer.append({"music_id": music_id, "status": status, "audio": audio})
            return json_answer(200, answer)
        return json_answer(404, {"error": "not found"})

    @property
    def songs_created(self) -> int:
        return len(self.jobs)


class FakeWorkersAI(FakeService):
    """Cloudflare's REST endpoint for Workers AI models, answering in its envelope. `answers` may override what a
    model says (a dict, or a string for a model that answers text instead of JSON)."""

    ACCOUNT, TOKEN = "acc123", "cf-test-token"

    def __init__(self, failure_rate: float = 0.0, seed: int = 0):
        super().__init__(failure_rate, seed)
        self.answers: dict = {}

    def handle(self, method, path, headers, body):
        prefix = f"/client/v4/accounts/{self.ACCOUNT}/ai/run/"
        if not path.startswith(prefix) or method != "POST":
            return json_answer(404, {"success": False, "errors": [{"code": 7003, "message": "No route"}]})
        if headers.get("Authorization") != f"Bearer {self.TOKEN}":
            return json_answer(401, {"success": False, "errors": [{"code": 10000, "message": "Authentication error"}]})
        model, inputs = path.removeprefix(prefix), json.loads(body)
        if model in self.answers:
            return json_answer(200, {"result": {"response": self.answers[model]}, "success": True, "errors": []})
        if "llava" in model:
            if not isinstance(inputs.get("image"), list) or not inputs["image"]:
                return json_answer(400, {"success": False, "errors": [{"code": 5006, "message": "image required"}]})
            result = {"description": f"A small picture of {len(inputs['image'])} bytes in bright colours."}
        elif "llama-guard" in model:
            content = inputs["messages"][0]["content"].lower()
            unsafe = "murder" in content
            result = {"response": {"safe": not unsafe, "categories": ["S1"] if unsafe else []}}
        else:
            result = {"response": {"title": "Cloud Song", "lyrics": "[Verse]\nclouds\n\n[Chorus]\nrain",
                                   "style": ["ambient", "chill"]}}  # fmt: skip
        return json_answer(200, {"result": result, "success": True, "errors": [], "messages": []})


class FakeReplicate(FakeService):
    """Replicate's predictions API: a prediction goes starting → processing → succeeded after `ready_after`
    seconds (or `fail_with` an error message), and its output URL serves MP3 audio."""

    TOKEN = "r8-test-token"

    def __init__(self, audio: bytes, ready_after: float = 0.6):
        super().__init__()
        self.audio, self.ready_after = audio, ready_after
        self.predictions: dict[str, dict] = {}
        self.fail_with: str | None = None
        self.create_delays: list[float] = []  # accept the prediction, then answer this late
        self.page_size = 100  # predictions per page of GET /v1/predictions; `next` is the URL of the older ones

    def _view(self, prediction_id: str) -> dict:
        entry = self.predictions[prediction_id]
        age = time.time() - entry["created"]
        status, output, error = "starting", None, None
        if age >= self.ready_after / 2:
            status = "processing"
        if age >= self.ready_after:
            if entry["error"]:
                status, error = "failed", entry["error"]
            else:
                status, output = "succeeded", f"{self.url}/files/{prediction_id}.mp3"
        urls = {"get": f"{self.url}/v1/predictions/{prediction_id}"}
        created = datetime.fromtimestamp(entry["created"], UTC).isoformat().replace("+00:00", "Z")
        return {"id": prediction_id, "version": entry["version"], "input": entry["input"], "status": status,
                "output": output, "error": error, "urls": urls, "created_at": created}  # fmt: skip

    def handle(self, method, path, headers, body):
        if path.startswith("/files/"):
            return 200, "audio/mpeg", self.audio
        if headers.get("Authorization") != f"Bearer {self.TOKEN}":
            detail = "You did not pass a valid authentication token"
            return json_answer(401, {"title": "Unauthenticated", "detail": detail, "status": 401})
        if path == "/v1/predictions" and method == "POST":
            request = json.loads(body)
            if not request.get("version") or not isinstance(request.get("input"), dict):
                return json_answer(422, {"detail": "version and input are required", "status": 422})
            prediction_id = uuid.uuid4().hex[:26]
            self.predictions[prediction_id] = {"created": time.time(), "version": request["version"],
                                               "input": request["input"], "error": self.fail_with}  # fmt: skip
            time.sleep(self.create_delays.pop(0) if self.create_delays else 0)
            return json_answer(201, self._view(prediction_id))
        if path.split("?")[0] == "/v1/predictions" and method == "GET":
            from urllib.parse import parse_qs, urlsplit

            offset = int(parse_qs(urlsplit(path).query).get("cursor", ["0"])[0])
            newest_first = sorted(self.predictions, key=lambda i: self.predictions[i]["created"], reverse=True)
            page = newest_first[offset : offset + self.page_size]
            more = offset + self.page_size < len(newest_first)
            following = f"{self.url}/v1/predictions?cursor={offset + self.page_size}" if more else None
            return json_answer(200, {"previous": None, "next": following, "results": [self._view(i) for i in page]})
        if path.startswith("/v1/predictions/") and method == "GET":
            prediction_id = path.split("?")[0].rsplit("/", 1)[1]
            if prediction_id not in self.predictions:
                return json_answer(404, {"detail": "Not found.", "status": 404})
            return json_answer(200, self._view(prediction_id))
        return json_answer(404, {"detail": "Not found.", "status": 404})


class FakeElevenLabs(FakeService):
    """ElevenLabs' compose endpoint: POST /v1/music answers the song's audio after `compose_seconds`; a prompt with
    a `refused_word` is a 400 `bad_prompt` with a suggestion, as the real API does."""

    KEY = "xi-test-key"

    def __init__(self, audio: bytes, compose_seconds: float = 0.1, failure_rate: float = 0.0, seed: int = 0):
        super().__init__(failure_rate, seed)
        self.audio, self.compose_seconds = audio, compose_seconds
        self.refused_word = "forbidden"
        self.audio_type = "audio/mpeg"
        self.composed = 0

    def handle(self, method, path, headers, body):
        from urllib.parse import parse_qs, urlsplit

        parts = urlsplit(path)
        if parts.path != "/v1/music" or method != "POST":
            return json_answer(404, {"detail": "Not Found"})
        if headers.get("xi-api-key") != self.KEY:
            return json_answer(401, {"detail": {"status": "invalid_api_key", "message": "Invalid API key"}})
        request = json.loads(body)
        length = request.get("music_length_ms")
        output_format = parse_qs(parts.query).get("output_format", ["mp3_44100_128"])[0]
        if not request.get("prompt") or not isinstance(length, int) or not 10_000 <= length <= 300_000:
            return json_answer(422, {"detail": [{"loc": ["body", "music_length_ms"], "msg": "invalid length"}]})
        if not output_format.startswith("mp3_"):
            return json_answer(422, {"detail": [{"loc": ["query", "output_format"], "msg": "unsupported"}]})
        if self.refused_word in request["prompt"]:
            return json_answer(400, {"detail": {"status": "bad_prompt", "message": "The prompt violates our terms",
                                                "data": {"prompt_suggestion": "a gentle song"}}})  # fmt: skip
        time.sleep(self.compose_seconds)
        self.composed += 1
        return 200, self.audio_type, self.audio

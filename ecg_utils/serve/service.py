"""The web service: `python -m ecg_utils.serve.service` (or `make serve`) serves the published model over HTTP.

    GET  /v1/health     the service is up and its model loaded
    GET  /v1/model      classes, sampling rate, window, protocol, whole-record setting, published figures, SHA-256
    POST /v1/classify   one record (WFDB files or a zip of them, one EDF, or one CSV with `fs`) -> every beat
                        (whole-record mode by default for a model that carries a setting: `adapt=false` for
                        the model as trained; the answer's `adaptation` says which was used)
    WS   /v1/stream     float32 samples in, one JSON message per classified beat out

The model loads once at start-up; classification runs in worker threads (at most `workers` records at a
time, and as many stream chunks in a queue of their own), so the event loop stays free. Bad requests get a
4xx whose message names the file and the problem. Every upload lives in its own temporary folder, deleted
when the request ends. With a token configured
(`ECG_API_TOKEN`), requests must carry it (`Authorization: Bearer <token>`; WebSocket: `?token=`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import secrets
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import numpy as np
from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse, Response
from starlette.formparsers import MultiPartException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ecg_utils.classify import classify_source
from ecg_utils.data.aami import CLASSES, PROBA_COLUMNS
from ecg_utils.data.readers import open_record
from ecg_utils.errors import DataError, LeadError
from ecg_utils.model.inference import Classifier, load_classifier
from ecg_utils.model.shipped import MODEL_PATH, model_info, sha256
from ecg_utils.serve.uploads import Limits, UploadError, max_upload_mb, receive_files
from ecg_utils.streaming import StreamingClassifier

FIELDS = ("files", "fs", "lead", "beats", "adapt")
# The form is parsed by hand (limits, clear errors), so its schema is declared for /v1/docs here.
CLASSIFY_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["files"], "properties": {
        "files": {"type": "array", "items": {"type": "string", "format": "binary"},
                  "description": "one record: WFDB .hea + .dat (+ .atr), or one .zip of them; one .edf; one .csv"},
        "fs": {"type": "number", "description": "sampling rate in Hz (CSV files only)"},
        "lead": {"type": "string", "description": "lead name (default: MLII, V5, V1, V2, V4, or the only lead)"},
        "beats": {"type": "string", "enum": ["detect", "atr"], "default": "detect",
                  "description": "R-peak detector, or the record's .atr annotations"},
        "adapt": {"type": "string", "enum": ["true", "false"], "default": "true",
                  "description": "whole-record mode: the model's batch norms adapted to the record's own beats (no "
                                 "label read); false: the model as trained, as the stream runs it"}}}}}}}
MAX_STREAM_MESSAGE = 4 * 1024 * 1024  # bytes of samples in one WebSocket message


@dataclass(frozen=True)
class Settings:
    model: Path = MODEL_PATH
    token: str | None = None  # requests must carry it when set
    max_upload_mb: float = 256.0
    workers: int = 2  # records classified at once

    @classmethod
    def from_env(cls) -> Settings:
        """Settings from ECG_MODEL, ECG_API_TOKEN, ECG_MAX_UPLOAD_MB and ECG_WORKERS."""
        env = os.environ
        workers = env.get("ECG_WORKERS", "2")
        if not workers.isdigit() or int(workers) < 1:
            raise ValueError(f"ECG_WORKERS={workers!r}; give the number of records classified at once, e.g. 2")
        return cls(model=Path(env.get("ECG_MODEL") or MODEL_PATH), token=env.get("ECG_API_TOKEN") or None,
                   max_upload_mb=max_upload_mb(), workers=int(workers))

    @property
    def limits(self) -> Limits:
        return Limits.of_mb(self.max_upload_mb)


class _TooLarge(Exception):
    pass


class LimitBody:
    """ASGI middleware: a request body over `max_bytes` gets 413, announced (Content-Length) or not.

    `max_bytes` is the upload limit plus room for the multipart framing; `limit_mb` is the limit users are told.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, limit_mb: float) -> None:
        self.app, self.max_bytes, self.limit_mb = app, max_bytes, limit_mb

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        too_large = _error(413, f"the upload is larger than the limit of {self.limit_mb:g} MB")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            return await too_large(scope, receive, send)
        seen = 0

        async def counting() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise _TooLarge
            return message

        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting, sending)
        except _TooLarge:
            if not started:
                await too_large(scope, receive, send)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"detail": message}, status)


def _authorised(headers: Any, query: Any, token: str | None) -> bool:
    if token is None:
        return True
    given = headers.get("authorization", "")
    given = given[7:] if given.lower().startswith("bearer ") else query.get("token", "")
    return secrets.compare_digest(given.encode(), token.encode())


def _classify(settings: Settings, classifier: Classifier, files: list[tuple[str | None, Any]],
              options: dict[str, str]) -> bytes:
    """Save, read and classify one uploaded record (in a worker thread); the JSON answer."""
    beats = options.get("beats", "detect")
    if beats not in ("detect", "atr"):
        raise UploadError(f"beats={beats!r}: use 'detect' (R-peak detector) or 'atr' (the record's annotations)")
    adapt = options.get("adapt", "true").strip().lower()
    if adapt not in ("true", "false"):
        raise UploadError(f"adapt={options['adapt']!r}: use 'true' (adapt the model to the record, the default) or "
                          "'false' (the model as trained)")
    fs = None
    if options.get("fs"):
        try:
            fs = float(options["fs"])
        except ValueError:
            raise UploadError(f"fs={options['fs']!r} is not a number; give the sampling rate in Hz") from None
    with tempfile.TemporaryDirectory(prefix="ecg-upload-") as folder:
        path, kind = receive_files(files, Path(folder), settings.limits)
        if kind == "csv" and fs is None:
            raise UploadError(f"{path.name}: a CSV file needs its sampling rate; send the field fs (Hz)")
        source = open_record(path, lead=options.get("lead") or None, fs=fs if kind == "csv" else None,
                             preferred=classifier.preprocess.leads)
        result = classify_source(source, classifier, beats, progress=False, adapt=adapt == "true")
    head = json.dumps({**result.summary(), "format": kind, "beats_from": beats, "backend": classifier.backend})
    # pandas serialises the beat table (100,000 beats a day) far faster than json.dumps of a list of dicts
    return (head[:-1] + ', "beats": ' + result.beats.to_json(orient="records", double_precision=4) + "}").encode()


def create_app(settings: Settings | None = None) -> FastAPI:
    """The service with its model loaded (once, here)."""
    settings = settings or Settings.from_env()
    classifier = load_classifier(settings.model, threads=1)
    meta = model_info() if settings.model.resolve() == MODEL_PATH.resolve() else {}
    info = {"file": settings.model.name, "sha256": sha256(settings.model), "backend": classifier.backend,
            "classes": list(CLASSES), "fs": classifier.preprocess.fs, "window": classifier.preprocess.window,
            "window_s": [-classifier.preprocess.before_s, classifier.preprocess.after_s],
            "leads": list(classifier.preprocess.leads), "protocol": meta.get("protocol"),
            "adaptation": classifier.adaptation and classifier.adaptation.to_dict(),
            "published_figures": meta.get("test_figures"), "published": bool(meta),
            "limits": {"max_upload_mb": settings.max_upload_mb, "workers": settings.workers}}
    # Uploads (seconds of work each) and stream chunks (milliseconds) wait in separate queues, so a long
    # upload never stalls the live streams.
    limiter, stream_limiter = anyio.CapacityLimiter(settings.workers), anyio.CapacityLimiter(settings.workers)
    app = FastAPI(title="ECG beat classifier", version="1", docs_url="/v1/docs", openapi_url="/v1/openapi.json")
    app.add_middleware(LimitBody, max_bytes=settings.limits.max_bytes + 64 * 1024, limit_mb=settings.max_upload_mb)

    @app.middleware("http")
    async def token(request: Request, call_next: Any) -> Response:
        if not _authorised(request.headers, request.query_params, settings.token):
            return _error(401, "missing or wrong token: send the header 'Authorization: Bearer <token>'")
        return await call_next(request)

    @app.get("/v1/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "model": settings.model.name, "backend": classifier.backend}

    @app.get("/v1/model")
    async def model() -> dict[str, Any]:
        return info

    @app.post("/v1/classify", openapi_extra=CLASSIFY_BODY, summary="Classify every beat of one record")
    async def classify(request: Request) -> Response:
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            return _error(415, "send the record as multipart/form-data, in the field 'files'")
        try:
            form = await request.form(max_files=settings.limits.max_files, max_fields=16)
        except (MultiPartException, ValueError) as exc:
            return _error(400, f"the multipart body could not be read ({exc})")
        try:
            unknown = sorted(set(form.keys()) - set(FIELDS))
            if unknown:
                return _error(400, f"unknown field(s) {unknown}; the fields are {list(FIELDS)}")
            files = [(f.filename, f.file) for f in form.getlist("files") if hasattr(f, "filename")]
            if len(files) != len(form.getlist("files")):
                return _error(400, "the field 'files' must hold files, not text")
            options = {k: str(form[k]) for k in FIELDS if k != "files" and k in form}
            body = await anyio.to_thread.run_sync(_classify, settings, classifier, files, options, limiter=limiter)
        except UploadError as exc:
            return _error(exc.status, str(exc))
        except LeadError as exc:
            return _error(422, f"{exc}; send the field 'lead' with one of them")
        except DataError as exc:
            return _error(422, str(exc))
        finally:
            await form.close()
        return Response(body, media_type="application/json")

    @app.websocket("/v1/stream")
    async def stream(ws: WebSocket) -> None:
        if not _authorised(ws.headers, ws.query_params, settings.token):
            await ws.close(code=1008, reason="missing or wrong token: add ?token=<token>")
            return
        try:
            fs = float(ws.query_params.get("fs", "nan"))
        except ValueError:
            fs = math.nan
        await ws.accept()
        if not (math.isfinite(fs) and fs > 0):
            await ws.send_json({"error": "give the sampling rate in Hz as ?fs=..., a positive number"})
            await ws.close(code=1008)
            return
        try:
            streamer = StreamingClassifier(classifier, fs)
        except DataError as exc:
            await ws.send_json({"error": str(exc)})
            await ws.close(code=1008)
            return
        try:
            while True:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    return
                data = message.get("bytes")
                if data is None:
                    if message.get("text") == "end":
                        await ws.close()
                        return
                    await ws.send_json({"error": "send samples as binary messages of little-endian float32 (mV), "
                                                 "or the text 'end'"})
                    continue
                if len(data) % 4 or len(data) > MAX_STREAM_MESSAGE:
                    await ws.send_json({"error": f"a message of {len(data)} bytes: send whole float32 samples, at "
                                                 f"most {MAX_STREAM_MESSAGE} bytes a message"})
                    continue
                chunk = np.frombuffer(data, dtype="<f4").astype(np.float64)
                try:
                    events = await anyio.to_thread.run_sync(streamer.process, chunk, limiter=stream_limiter)
                except DataError as exc:
                    await ws.send_json({"error": str(exc)})
                    continue
                for e in events:
                    await ws.send_json({"sample": e.sample, "time_s": round(e.sample / fs, 3), "pred": e.pred,
                                        **{c: round(float(p), 4) for c, p in zip(PROBA_COLUMNS, e.proba)},
                                        "latency_s": round(e.latency_s, 3),
                                        "quality_db": None if np.isnan(e.quality_db) else round(e.quality_db, 1),
                                        "similarity": None if np.isnan(e.similarity) else round(e.similarity, 1),
                                        "unreadable": e.unreadable})
        except WebSocketDisconnect:
            return

    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0].split(":")[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: this machine only)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--model", type=Path, help="model file (default: ECG_MODEL or the published model)")
    args = parser.parse_args(argv)
    import uvicorn

    try:
        settings = Settings.from_env()
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.model:
        settings = Settings(args.model, settings.token, settings.max_upload_mb, settings.workers)
    try:
        app = create_app(settings)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0


if __name__ == "__main__":
    sys.exit(main())

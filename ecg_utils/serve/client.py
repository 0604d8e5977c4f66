"""A client of the web service (`ecg_utils.serve.service`), as the app and the load benchmark use it."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import numpy as np
import pandas as pd

from ecg_utils.data.aami import PROBA_COLUMNS

BEAT_COLUMNS = ["sample", "time_s", "pred", *PROBA_COLUMNS, "quality_db", "similarity", "unreadable"]


class ApiError(RuntimeError):
    """The service refused a request or could not be reached; the message says why, readably."""


@dataclass
class ApiClient:
    url: str = "http://127.0.0.1:8000"
    token: str | None = None
    timeout_s: float = 600.0

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = httpx.request(method, self.url.rstrip("/") + path, headers=self._headers(),
                                     timeout=self.timeout_s, **kwargs)
        except httpx.HTTPError as exc:
            raise ApiError(f"the service at {self.url} cannot be reached ({exc}); start it with `make serve`") from None
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise ApiError(f"the service answered {response.status_code}: {detail}")
        return response.json()

    def health(self) -> dict[str, Any]:
        return self._call("GET", "/v1/health")

    def model(self) -> dict[str, Any]:
        return self._call("GET", "/v1/model")

    def classify(self, files: Sequence[tuple[str, bytes]], fs: float | None = None, lead: str | None = None,
                 beats: str = "detect", adapt: bool = True) -> dict[str, Any]:
        """Classify one record sent as (file name, contents) pairs; the service's JSON answer. `adapt`: whole-record
        mode (the service's default) or the model as trained."""
        data = {"beats": beats, "adapt": "true" if adapt else "false", **({"fs": str(fs)} if fs else {}),
                **({"lead": lead} if lead else {})}
        return self._call("POST", "/v1/classify", files=[("files", (name, body)) for name, body in files], data=data)

    def stream(self, samples: np.ndarray, fs: float, chunk_s: float = 1.0) -> Iterator[dict[str, Any]]:
        """Send `samples` (mV) over the WebSocket in chunks of `chunk_s` seconds; yield each beat as it comes."""
        from websockets.sync.client import connect

        query = urlencode({"fs": fs, **({"token": self.token} if self.token else {})})
        step = max(1, round(chunk_s * fs))
        with connect(f"ws{self.url[4:].rstrip('/')}/v1/stream?{query}", max_size=None) as ws:
            for i in range(0, len(samples), step):
                ws.send(np.asarray(samples[i:i + step], dtype="<f4").tobytes())
                yield from _drain(ws)
            ws.send("end")
            for message in ws:
                yield _beat(message)


def _beat(message: str | bytes) -> dict[str, Any]:
    beat = json.loads(message)
    if "error" in beat:
        raise ApiError(f"the stream was refused: {beat['error']}")
    return beat


def _drain(ws: Any) -> Iterator[dict[str, Any]]:
    """The beats already waiting on the socket, without blocking."""
    while True:
        try:
            message = ws.recv(timeout=0)
        except TimeoutError:
            return
        yield _beat(message)


def beats_frame(answer: dict[str, Any]) -> pd.DataFrame:
    """The beats of a classify answer as the table `python -m ecg_utils.predict` writes."""
    return pd.DataFrame(answer["beats"], columns=BEAT_COLUMNS)

"""A scripted OpenAI-compatible chat server on 127.0.0.1, for driving litellm over real HTTP.

Each POST to ``/v1/chat/completions`` is recorded and answered by the next :class:`Reply` of
the script (a list, consumed in order) or by a function of the request body. Replies can be
plain answers, refusals, HTTP errors with headers (429 with Retry-After), slow answers (for
timeouts) and streamed answers (server-sent events).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """One scripted answer."""

    content: str | None = ""
    status: int = 200
    delay_s: float = 0.0
    stream: bool = False
    refusal: str | None = None
    finish_reason: str = "stop"
    headers: dict[str, str] = field(default_factory=dict)
    usage: tuple[int, int] = (1000, 100)
    """(prompt_tokens, completion_tokens) reported to the client."""
    error: str = "scripted error"


def answer(findings: list[dict[str, Any]] | None = None,
           hints: list[dict[str, str]] | None = None, summary: str = "") -> str:
    """An answer in the schema's shape, as JSON text."""
    return json.dumps({"findings": findings or [], "benign_hints": hints or [],
                       "summary": summary})


def cite(statement_id: str, quote: str, indicator: str, confidence: float = 0.9,
         justification: str = "scripted justification") -> dict[str, Any]:
    """One citation."""
    return {"statement_ids": [statement_id], "quote": quote, "indicator": indicator,
            "justification": justification, "confidence": confidence}


Script = list[Reply] | Callable[[dict[str, Any]], Reply]


class ScriptedServer:
    """Context manager: a threaded HTTP server answering from a script."""

    def __init__(self, script: Script, model: str = "gpt-4.1-mini") -> None:
        self.script = script
        self.model = model
        self.requests: list[dict[str, Any]] = []
        self.auth: list[str] = []
        """Authorization header of each request."""
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,),
                                        daemon=True)

    @property
    def url(self) -> str:
        """Base URL for ``--api-base``."""
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _next(self, body: dict[str, Any], auth: str) -> Reply:
        with self._lock:
            self.requests.append(body)
            self.auth.append(auth)
            if callable(self.script):
                return self.script(body)
            if not self.script:
                return Reply(status=500, error="script exhausted")
            return self.script.pop(0)

    def _completion(self, reply: Reply) -> dict[str, Any]:
        msg: dict[str, Any] = {"role": "assistant", "content": reply.content}
        if reply.refusal is not None:
            msg["refusal"] = reply.refusal
        pt, ct = reply.usage
        return {"id": "chatcmpl-test", "object": "chat.completion", "created": 1700000000,
                "model": self.model, "choices": [{"index": 0, "message": msg,
                                                  "finish_reason": reply.finish_reason}],
                "usage": {"prompt_tokens": pt, "completion_tokens": ct,
                          "total_tokens": pt + ct}}

    def _chunks(self, reply: Reply) -> list[dict[str, Any]]:
        text = reply.content or ""
        pieces = [text[i : i + 40] for i in range(0, len(text), 40)] or [""]
        base = {"id": "chatcmpl-test", "object": "chat.completion.chunk",
                "created": 1700000000, "model": self.model}
        out = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                     "finish_reason": None}]}]
        out += [{**base, "choices": [{"index": 0, "delta": {"content": p},
                                      "finish_reason": None}]} for p in pieces]
        out.append({**base, "choices": [{"index": 0, "delta": {},
                                         "finish_reason": reply.finish_reason}]})
        pt, ct = reply.usage
        out.append({**base, "choices": [], "usage": {"prompt_tokens": pt,
                                                     "completion_tokens": ct,
                                                     "total_tokens": pt + ct}})
        return out

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

            def _send(self, status: int, body: bytes, ctype: str,
                      headers: dict[str, str]) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send(404, b'{"error": {"message": "not found"}}',
                               "application/json", {})
                    return
                reply = server._next(body, self.headers.get("Authorization") or "")
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                try:
                    if reply.status != 200:
                        err = {"error": {"message": reply.error, "type": "scripted",
                                         "code": str(reply.status)}}
                        self._send(reply.status, json.dumps(err).encode(), "application/json",
                                   reply.headers)
                    elif reply.stream:
                        data = "".join(f"data: {json.dumps(c)}\n\n" for c in server._chunks(reply))
                        data += "data: [DONE]\n\n"
                        self._send(200, data.encode(), "text/event-stream", reply.headers)
                    else:
                        self._send(200, json.dumps(server._completion(reply)).encode(),
                                   "application/json", reply.headers)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

        return Handler

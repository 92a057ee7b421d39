"""moto for the benchmarks, in its own process, counting the calls it serves.

Each request is counted under (caller, service, operation). The caller is the `app/<id>` part of
the User-Agent, which botocore takes from the AWS_SDK_UA_APP_ID environment variable: the bench
gives the worker and the bare pipeline their own ids, so calls made by the bench itself (the
createUpload that precedes each PUT) stay apart. `GET /__calls__` answers the counts as JSON.

    python -m bench.moto_calls <port>
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
import urllib.request
from collections import Counter, defaultdict
from typing import Any

import infra.aws.embedded as embedded

PATH = "/__calls__"
_APP = re.compile(r"\bapp/(\S+)")
Key = tuple[str, str, str]  # (caller, service, operation)
_counts: Counter[Key] = Counter()
_cpu_ms: dict[Key, float] = defaultdict(float)
_lock = threading.Lock()


def operation(environ: dict[str, Any]) -> tuple[str, str]:
    """(service, operation) of a request: JSON protocols name it in X-Amz-Target; S3 (REST) by
    method and query."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        prefix, _, name = target.partition(".")
        service = "DynamoDB" if prefix.startswith("DynamoDB") else "SQS" if "SQS" in prefix else prefix
        return service, name
    method = environ.get("REQUEST_METHOD", "")
    query = environ.get("QUERY_STRING", "")
    if method == "PUT":
        if "HTTP_X_AMZ_COPY_SOURCE" in environ:
            return "S3", "CopyObject"
        return "S3", "UploadPart" if "partNumber=" in query else "PutObject"
    if method == "GET":
        _, _, key = environ.get("PATH_INFO", "/").lstrip("/").partition("/")
        return "S3", "GetObject" if key else "ListObjects"
    names = {"HEAD": "HeadObject", "DELETE": "DeleteObject", "POST": "Post"}
    return "S3", names.get(method, method)


def _counting(app: Any) -> Any:
    def wrapped(environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO") == PATH:
            with _lock:
                counts = json.dumps([[*key, n, _cpu_ms[key]] for key, n in _counts.items()]).encode()
            start_response("200 OK", [("Content-Type", "application/json")])
            return [counts]
        found = _APP.search(environ.get("HTTP_USER_AGENT", ""))
        key = (found.group(1) if found else "", *operation(environ))
        started = time.thread_time()  # each request has its own thread: its CPU, not the others'
        body = list(app(environ, start_response))
        spent = (time.thread_time() - started) * 1000
        with _lock:
            _counts[key] += 1
            _cpu_ms[key] += spent
        return body

    return wrapped


def calls(endpoint: str) -> tuple[Counter[Key], Counter[Key]]:
    """The calls so far of the server at `endpoint`, and the CPU ms moto spent on them, by
    (caller, service, operation)."""
    with urllib.request.urlopen(endpoint + PATH, timeout=10) as response:  # noqa: S310 (loopback)
        rows = json.loads(response.read())
    return (
        Counter({(app, service, op): n for app, service, op, n, _ in rows}),
        Counter({(app, service, op): ms for app, service, op, _, ms in rows}),
    )


def main(port: int) -> None:
    serialised = embedded._serialise_dynamodb
    embedded._serialise_dynamodb = lambda app: _counting(serialised(app))  # the outermost layer
    with embedded.moto_server(port):
        while True:
            time.sleep(3600)


if __name__ == "__main__":
    main(int(sys.argv[1]))

"""Schemathesis hooks for scripts/schemathesis: every request is signed as a
partner signs it, with KORALA_API_KEY_ID and KORALA_API_SECRET.

The signature is computed on the prepared request, after the body has been
serialised and the URL encoded, so it covers exactly the bytes and the path
that go on the wire: X-Signature is the lowercase hex
HMAC-SHA256(secret, "{timestamp}.{METHOD}.{path with query}.{body}").
"""

import hashlib
import hmac
import os
import time

import requests
import schemathesis

KEY_ID = os.environ["KORALA_API_KEY_ID"]
SECRET = os.environ["KORALA_API_SECRET"].encode()


class Signed(requests.auth.AuthBase):
    """requests applies auth last, after the body and the URL are final."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body
        if body is None:
            body = b""
        elif isinstance(body, str):
            # http.client would encode a str body as Latin-1; send the UTF-8
            # bytes that are signed instead.
            body = body.encode("utf-8")
            request.body = body
            request.prepare_content_length(body)
        elif not isinstance(body, bytes):
            raise TypeError(f"cannot sign a streamed body ({type(body).__name__})")
        timestamp = str(int(time.time()))
        payload = b".".join(
            [timestamp.encode(), request.method.upper().encode(), request.path_url.encode(), body]
        )
        request.headers["X-API-Key"] = KEY_ID
        request.headers["X-Timestamp"] = timestamp
        request.headers["X-Signature"] = hmac.new(SECRET, payload, hashlib.sha256).hexdigest()
        return request


# What the document marks `security: []`: the end user's routes, which an
# end user's browser calls unsigned, and the document itself.
UNSIGNED = ("/api/v1/access/", "/api/v1/openapi.json")


@schemathesis.hook
def before_call(context, case, kwargs):
    if case.operation.path.startswith(UNSIGNED):
        return
    kwargs["auth"] = Signed()

"""Seeds the server scripts/schemathesis tests with real resources, and
writes the schemathesis configuration that makes the generated requests use
their ids and slugs half of the time, so they reach the handlers' logic
rather than a 404.

    python3 scripts/schemathesis_seed.py BASE_URL CONFIG_PATH

Reads KORALA_API_KEY_ID and KORALA_API_SECRET. Standard library only.
"""

import hashlib
import hmac
import json
import os
import sys
import time
import urllib.error
import urllib.request

BASE, CONFIG = sys.argv[1], sys.argv[2]
KEY_ID = os.environ["KORALA_API_KEY_ID"]
SECRET = os.environ["KORALA_API_SECRET"].encode()


def call(method, path, body=None, signed=True, expect=(200, 201, 202)):
    data = b"" if body is None else json.dumps(body).encode()
    request = urllib.request.Request(BASE + path, data=data or None, method=method)
    if data:
        request.add_header("Content-Type", "application/json")
    if signed:
        timestamp = str(int(time.time()))
        payload = b".".join([timestamp.encode(), method.encode(), path.encode(), data])
        request.add_header("X-API-Key", KEY_ID)
        request.add_header("X-Timestamp", timestamp)
        request.add_header("X-Signature", hmac.new(SECRET, payload, hashlib.sha256).hexdigest())
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, text = response.status, response.read()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read()
    if status not in expect:
        sys.exit(f"seeding: {method} {path} answered {status}: {text.decode(errors='replace')}")
    return json.loads(text) if text else None


def main():
    call("POST", "/api/v1/session-configurations", {
        "name": "KYC Standard",
        "slug": "kyc-standard",
        "workflowSlugs": ["id-document", "proof-of-address"],
    })
    call("POST", "/api/v1/workflows", {
        "name": "Manual review",
        "slug": "manual-review",
        "steps": [
            {"type": "capture", "config": {"fields": [{"name": "note", "type": "text"}]}},
            {"type": "review", "config": {"reason": "A person reads the note"}},
            {"type": "output", "config": {}},
        ],
    })
    call("POST", "/api/v1/session-configurations", {
        "name": "Reviewed",
        "slug": "reviewed",
        "workflowSlugs": ["manual-review", "id-document"],
    })
    # One session half way through, one paused for the partner's review,
    # one not started.
    sessions = [
        call("POST", "/api/v1/sessions", {"configurationSlug": "kyc-standard", "externalUserId": "usr_seed_1"}),
        call("POST", "/api/v1/sessions", {"configurationSlug": "reviewed", "externalUserId": "usr_seed_2"}),
        call("POST", "/api/v1/sessions", {"configurationSlug": "kyc-standard", "externalUserId": "usr_seed_3"}),
    ]
    first, second = sessions[0], sessions[1]
    call("POST", f"/api/v1/access/{first['accessToken']}/workflows/{first['workflows'][0]['id']}", {
        "data": {
            "documentType": "passport",
            "documentNumber": "X1234567",
            "fullName": "Jane Doe",
            "dateOfBirth": "1990-04-12",
            "expiryDate": "2035-01-01",
            "issuingCountry": "GB",
        }
    }, signed=False)
    call("POST", f"/api/v1/access/{second['accessToken']}/workflows/{second['workflows'][0]['id']}",
         {"data": {"note": "Please look"}}, signed=False)
    endpoint = call("POST", "/api/v1/webhook-endpoints", {
        "url": "https://partner.example/webhooks/korala",
        "events": ["session_completed"],
    })
    delivery = call("POST", f"/api/v1/webhook-endpoints/{endpoint['id']}/test")

    dictionaries = {
        "sessions": [s["id"] for s in sessions],
        "session-workflows": [w["id"] for s in sessions for w in s["workflows"]],
        "access-tokens": [s["accessToken"] for s in sessions],
        "configurations": ["kyc-standard", "reviewed"],
        "workflows": ["manual-review", "id-document"],
        "webhook-endpoints": [endpoint["id"]],
        "webhook-deliveries": [delivery["id"]],
    }
    bindings = [
        (r"^/api/v1/sessions/\{id\}", {"path.id": "sessions", "path.sessionWorkflowId": "session-workflows"}),
        (r"^/api/v1/access/", {"path.accessToken": "access-tokens", "path.sessionWorkflowId": "session-workflows"}),
        (r"^/api/v1/session-configurations/\{slug\}$", {"path.slug": "configurations"}),
        (r"^/api/v1/workflows/\{slug\}$", {"path.slug": "workflows"}),
        (r"^/api/v1/webhook-endpoints/\{id\}", {"path.id": "webhook-endpoints"}),
        (r"^/api/v1/webhook-deliveries/\{id\}", {"path.id": "webhook-deliveries"}),
    ]
    lines = []
    for name, values in dictionaries.items():
        lines += [f"[dictionaries.{name}]", f"values = {json.dumps(values)}", ""]
    for regex, parameters in bindings:
        bound = ", ".join(
            f'"{parameter}" = {{ dictionary = "{dictionary}", probability = 0.5 }}'
            for parameter, dictionary in parameters.items()
        )
        lines += ["[[operations]]", f"include-path-regex = {json.dumps(regex)}", f"parameters = {{ {bound} }}", ""]
    with open(CONFIG, "w") as f:
        f.write("\n".join(lines))


main()

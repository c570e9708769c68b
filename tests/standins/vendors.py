#!/usr/bin/env python3
"""Local stand-in for the HTTP APIs of the vendors edgehook delivers to.

Rust integration tests start it, point edgehook at it over plain http on
loopback, and read back what it received. Each endpoint checks the wire format
the vendor documents, and checks signatures and tokens with an implementation
that does not come from edgehook:

* AWS (Lambda function URL / API Gateway, any method on ``/aws/...``): the
  SigV4 header form ("Authenticating requests: Using the Authorization
  header", AWS General Reference / IAM user guide "Signature Version 4 signing
  process"). The signature is recomputed by botocore (``botocore.auth.
  SigV4Auth``, the signer of the AWS SDK for Python) over exactly the headers
  named in SignedHeaders, with the received X-Amz-Date as its timestamp.
  X-Amz-Content-Sha256 must be the hex SHA-256 of the body, X-Amz-Date within
  15 minutes of now, X-Amz-Security-Token present when a session token is
  configured.
* Azure IoT Hub device-to-cloud over HTTPS (``POST /devices/{id}/messages/
  events?api-version=...``, "Send device-to-cloud message" REST reference) with
  a SAS token as described in "Control access to IoT Hub by using shared access
  signatures" (learn.microsoft.com/azure/iot-hub/authenticate-authorize-sas):
  HMAC-SHA256 with the base64-decoded key over ``quote_plus(uri) + "\\n" +
  expiry``. Written here from that page, not taken from an SDK.
* Google OAuth 2.0 for service accounts ("Using OAuth 2.0 for Server to Server
  Applications": JWT bearer grant, RFC 7523) verified with PyJWT and the
  service account's public key, then Pub/Sub ``topics.publish`` (REST
  reference: ``{"messages": [{"data": base64, "attributes": {...}}]}``).
* OAuth 2.0 client credentials grant (RFC 6749 sections 2.3.1, 4.4 and 5.1;
  bearer use per RFC 6750), with hooks to revoke tokens and to fail the token
  endpoint so that tests can exercise refresh and retry.
* InfluxDB v2 ``POST /api/v2/write`` (API reference and "Line protocol"
  reference) with a line protocol parser written from that reference.
* Slack incoming webhooks ("Sending messages using incoming webhooks": JSON
  with ``text`` or ``blocks``, answered by a plain ``ok``).

Usage: ``python3 vendors.py --config FILE``; see README.md beside this file.
Needs the PyPI packages botocore, PyJWT and cryptography.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import datetime
import gzip
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, quote_plus, unquote, unquote_plus, urlsplit

import botocore.auth
import jwt
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials

VENDORS = (
    "aws",
    "azure",
    "google-token",
    "google-publish",
    "oauth2-token",
    "oauth2-api",
    "influx",
    "slack",
)
SIGV4_TIMESTAMP = "%Y%m%dT%H%M%SZ"
AWS_MAX_SKEW = datetime.timedelta(minutes=15)
GOOGLE_TOKEN_LIFETIME = 3599


# -- requests, answers and shared state ------------------------------------


@dataclass
class Request:
    method: str
    target: str  # path with query, as received
    path: str  # path only, still percent-encoded
    query: list[tuple[str, str]]  # decoded as a form ("+" is a space), like Go's url.ParseQuery
    headers: list[tuple[str, str]]  # as received, in order
    body: bytes
    port: int

    def header(self, name: str) -> str | None:
        """All values of a header joined by ", ", or None when absent."""
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        return ", ".join(values) if values else None

    def param(self, name: str) -> str | None:
        for k, v in self.query:
            if k == name:
                return v
        return None

    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Answer:
    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @staticmethod
    def json(status: int, value, **headers) -> "Answer":
        return Answer(status, json.dumps(value).encode(), "application/json", headers)

    @staticmethod
    def text(status: int, text: str) -> "Answer":
        return Answer(status, text.encode(), "text/plain; charset=utf-8")


class Reject(Exception):
    """A request the vendor would refuse: the answer to send and why."""

    def __init__(self, answer: Answer, reason: str):
        super().__init__(reason)
        self.answer = answer
        self.reason = reason


class State:
    """Everything the handlers share; every access holds the lock."""

    def __init__(self, config: dict):
        self.config = config
        self.lock = threading.Lock()
        self.log: list[dict] = []
        # token -> expiry (time.time()); revoked ones move to the sets below.
        self.google_tokens: dict[str, float] = {}
        self.oauth2_tokens: dict[str, float] = {}
        self.revoked: set[str] = set()
        self.fail_token = {"oauth2-token": 0, "google-token": 0}
        self.next_message_id = 1

    def issue(self, table: dict[str, float], prefix: str, lifetime: int) -> str:
        token = prefix + secrets.token_urlsafe(24)
        with self.lock:
            table[token] = time.time() + lifetime
        return token

    def check_token(self, table: dict[str, float], token: str) -> str | None:
        """None when the token is usable, else why not."""
        with self.lock:
            if token in self.revoked:
                return "revoked token"
            expiry = table.get(token)
        if expiry is None:
            return "unknown token"
        if time.time() >= expiry:
            return "expired token"
        return None

    def revoke_all(self) -> int:
        with self.lock:
            tokens = list(self.google_tokens) + list(self.oauth2_tokens)
            self.revoked.update(tokens)
            self.google_tokens.clear()
            self.oauth2_tokens.clear()
        return len(tokens)

    def take_injected_failure(self, vendor: str) -> bool:
        with self.lock:
            if self.fail_token.get(vendor, 0) > 0:
                self.fail_token[vendor] -= 1
                return True
        return False


STATE: State  # set in main()


def bearer(req: Request) -> str | None:
    auth = req.header("Authorization") or ""
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def media_type(req: Request) -> tuple[str, dict[str, str]]:
    """The Content-Type's media type (lowercased) and its parameters."""
    value = req.header("Content-Type") or ""
    parts = [p.strip() for p in value.split(";")]
    params = {}
    for p in parts[1:]:
        k, _, v = p.partition("=")
        params[k.strip().lower()] = v.strip().strip('"')
    return parts[0].lower(), params


def form(req: Request) -> dict[str, str]:
    """An application/x-www-form-urlencoded body; repeated names are refused."""
    pairs = parse_qsl(req.body.decode("utf-8", "replace"), keep_blank_values=True)
    out: dict[str, str] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"parameter {k!r} repeated")
        out[k] = v
    return out


# -- 1. AWS SigV4 ------------------------------------------------------------


class _ReceivedHeadersSigV4(botocore.auth.SigV4Auth):
    """botocore's SigV4 signer restricted to the headers the client signed.

    botocore would otherwise sign every header of the request except a fixed
    deny list (which includes e.g. user-agent, legal to sign in SigV4); the
    canonical request, string to sign and key derivation stay botocore's.
    """

    def __init__(self, credentials, service, region, signed: list[str]):
        super().__init__(credentials, service, region)
        self._signed = signed

    def headers_to_sign(self, request):
        out = HTTPHeaders()
        for name in self._signed:
            for value in request.headers.get_all(name) or []:
                out[name] = value
        return out


def verify_sigv4(
    method: str,
    url: str,
    headers: list[tuple[str, str]],
    body: bytes,
    access_key: str,
    secret_key: str,
    region: str,
    service: str,
    session_token: str | None = None,
) -> str | None:
    """Check a SigV4 Authorization header by re-signing with botocore.

    ``url`` is the URL the client signed (scheme, host, raw path and query as
    sent). Returns None when the signature holds, else the reason. Does not
    judge the clock; the caller does.
    """
    lookup = {}
    for k, v in headers:
        lookup.setdefault(k.lower(), []).append(v)
    auth = ", ".join(lookup.get("authorization", []))
    prefix = "AWS4-HMAC-SHA256 "
    if not auth.startswith(prefix):
        return "Authorization is not AWS4-HMAC-SHA256"
    fields = {}
    for part in auth[len(prefix):].split(","):
        k, eq, v = part.strip().partition("=")
        if not eq or k in fields:
            return f"malformed Authorization component {part.strip()!r}"
        fields[k] = v
    if set(fields) != {"Credential", "SignedHeaders", "Signature"}:
        return f"Authorization needs Credential, SignedHeaders, Signature; got {sorted(fields)}"

    amz_date = ", ".join(lookup.get("x-amz-date", []))
    try:
        datetime.datetime.strptime(amz_date, SIGV4_TIMESTAMP)
    except ValueError:
        return f"X-Amz-Date {amz_date!r} is not YYYYMMDDTHHMMSSZ"

    scope = fields["Credential"].split("/")
    want_scope = [access_key, amz_date[:8], region, service, "aws4_request"]
    if scope != want_scope:
        return f"Credential scope {fields['Credential']!r}, expected {'/'.join(want_scope)!r}"

    signed = fields["SignedHeaders"].split(";")
    if signed != sorted(set(h.lower() for h in signed)) or "" in signed:
        return f"SignedHeaders {fields['SignedHeaders']!r} is not sorted, lowercase and unique"
    for required in ("host", "x-amz-date"):
        if required not in signed:
            return f"{required} is not in SignedHeaders"
    missing = [h for h in signed if h not in lookup]
    if missing:
        return f"signed headers missing from the request: {missing}"

    parts = urlsplit(url)
    query = [(unquote(k), unquote(v)) for k, _, v in
             (p.partition("=") for p in parts.query.split("&") if p)]
    request = AWSRequest(
        method=method,
        url=f"{parts.scheme}://{parts.netloc}{parts.path}",
        data=body,
        params=query,
    )
    for name in signed:
        for value in lookup[name]:
            request.headers[name] = value
    signer = _ReceivedHeadersSigV4(
        Credentials(access_key, secret_key, session_token), service, region, signed)
    # SigV4Auth.add_auth() stamps context["timestamp"] from its own clock and then
    # rewrites the date headers; set the received stamp and run the same steps
    # add_auth() runs after that (canonical request, string to sign, signature).
    request.context["timestamp"] = amz_date
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    if not hmac.compare_digest(expected, fields["Signature"]):
        return f"signature does not match; botocore's canonical request was {canonical!r}"
    return None


def check_aws(req: Request, cfg: dict) -> Answer:
    def deny(reason: str):
        raise Reject(Answer.json(403, {"message": reason}), reason)

    body_hash = req.header("X-Amz-Content-Sha256")
    if body_hash is None:
        deny("X-Amz-Content-Sha256 missing")
    if body_hash != hashlib.sha256(req.body).hexdigest():
        deny("X-Amz-Content-Sha256 is not the hex SHA-256 of the body")
    if req.header("Authorization") is None:
        deny("Authorization missing")
    token = cfg.get("session_token")
    if token is not None and req.header("X-Amz-Security-Token") != token:
        deny("X-Amz-Security-Token missing or wrong")
    problem = verify_sigv4(
        req.method,
        req.base_url() + req.target,
        req.headers,
        req.body,
        cfg["access_key_id"],
        cfg["secret_access_key"],
        cfg["region"],
        cfg["service"],
        token,
    )
    if problem:
        deny(problem)
    stamp = datetime.datetime.strptime(req.header("X-Amz-Date"), SIGV4_TIMESTAMP)
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    if abs(now - stamp) > AWS_MAX_SKEW:
        deny(f"X-Amz-Date {req.header('X-Amz-Date')} is more than 15 minutes from now")
    return Answer.json(200, {"ok": True})


# -- 2. Azure IoT Hub SAS ------------------------------------------------------


def azure_sas_signature(key_b64: str, resource_uri: str, expiry: str) -> str:
    """The base64 signature (not yet URL-encoded) Microsoft's SAS page defines."""
    to_sign = f"{quote_plus(resource_uri)}\n{expiry}".encode()
    digest = hmac.new(base64.b64decode(key_b64), to_sign, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def check_azure(req: Request, cfg: dict) -> Answer:
    def deny(status: int, reason: str):
        raise Reject(Answer.json(status, {"message": reason}), reason)

    m = re.fullmatch(r"/devices/([^/]+)/messages/events", req.path)
    if not m or req.method != "POST":
        deny(404, f"no such IoT Hub endpoint: {req.method} {req.path}")
    device = unquote(m.group(1))
    if not req.param("api-version"):
        deny(400, "api-version query parameter missing")
    if device != cfg["device"]:
        deny(404, f"device {device!r} not found")

    auth = req.header("Authorization") or ""
    prefix = "SharedAccessSignature "
    if not auth.startswith(prefix):
        deny(401, "Authorization is not a SharedAccessSignature")
    fields: dict[str, str] = {}
    for part in auth[len(prefix):].split("&"):
        k, eq, v = part.partition("=")
        if not eq or k in fields:
            deny(401, f"malformed SAS token component {part!r}")
        fields[k] = v
    for name in ("sr", "sig", "se"):
        if name not in fields:
            deny(401, f"SAS token has no {name}")
    unknown = set(fields) - {"sr", "sig", "se", "skn"}
    if unknown:
        deny(401, f"SAS token has unknown fields {sorted(unknown)}")

    resource = unquote_plus(fields["sr"])
    expected_resource = f"{cfg['hub']}/devices/{device}"
    if resource.lower() != expected_resource.lower():
        deny(401, f"sr is {resource!r}, expected {expected_resource!r}")
    se = fields["se"]
    if not se.isdigit():
        deny(401, f"se {se!r} is not an integer")
    if int(se) <= time.time():
        deny(401, f"token expired (se={se})")
    key_name = cfg.get("key_name")
    skn = unquote_plus(fields["skn"]) if "skn" in fields else None
    if skn != key_name:
        deny(401, f"skn is {skn!r}, expected {key_name!r}")
    want = azure_sas_signature(cfg["key"], resource, se)
    if not hmac.compare_digest(unquote_plus(fields["sig"]), want):
        deny(401, "signature does not match")
    return Answer(204)


# -- 3. Google service account token and Pub/Sub ----------------------------------


def google_error(status: int, reason: str, status_name: str) -> Reject:
    body = {"error": {"code": status, "message": reason, "status": status_name}}
    return Reject(Answer.json(status, body), reason)


def check_google_token(req: Request, cfg: dict) -> Answer:
    def grant_error(error: str, reason: str):
        raise Reject(Answer.json(400, {"error": error, "error_description": reason}), reason)

    if req.method != "POST":
        grant_error("invalid_request", f"method {req.method} not allowed")
    if STATE.take_injected_failure("google-token"):
        raise Reject(Answer.json(503, {"error": "temporarily_unavailable"}), "injected failure")
    if media_type(req)[0] != "application/x-www-form-urlencoded":
        grant_error("invalid_request", "Content-Type is not application/x-www-form-urlencoded")
    try:
        params = form(req)
    except ValueError as e:
        grant_error("invalid_request", str(e))
    if params.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
        grant_error("unsupported_grant_type", f"grant_type {params.get('grant_type')!r}")
    assertion = params.get("assertion")
    if not assertion:
        grant_error("invalid_request", "assertion missing")

    token_uri = req.base_url() + "/google/token"
    try:
        header = jwt.get_unverified_header(assertion)
        claims = jwt.decode(
            assertion,
            cfg["public_key_pem"],
            algorithms=["RS256"],
            audience=token_uri,
            issuer=cfg["client_email"],
            leeway=30,
            options={"require": ["iss", "aud", "iat", "exp", "scope"]},
        )
    except jwt.PyJWTError as e:
        grant_error("invalid_grant", f"JWT rejected by PyJWT: {type(e).__name__}: {e}")
    if header.get("typ", "JWT") != "JWT":
        grant_error("invalid_grant", f"JWT header typ {header.get('typ')!r}")
    if not isinstance(claims["iat"], int) or not isinstance(claims["exp"], int):
        grant_error("invalid_grant", "iat and exp must be integer seconds")
    if not 0 < claims["exp"] - claims["iat"] <= 3600:
        grant_error("invalid_grant", f"exp - iat = {claims['exp'] - claims['iat']}, must be in (0, 3600]")
    if set(str(claims["scope"]).split()) != set(cfg["scope"].split()):
        grant_error("invalid_scope", f"scope {claims['scope']!r}, expected {cfg['scope']!r}")

    token = STATE.issue(STATE.google_tokens, "ya29.", GOOGLE_TOKEN_LIFETIME)
    return Answer.json(200, {"access_token": token, "expires_in": GOOGLE_TOKEN_LIFETIME,
                             "token_type": "Bearer"})


PUBSUB_MESSAGE_FIELDS = {"data", "attributes", "orderingKey", "messageId", "publishTime"}


def check_google_publish(req: Request, cfg: dict) -> Answer:
    m = re.fullmatch(r"/google/v1/projects/([^/]+)/topics/([^/:]+):publish", req.path)
    if not m or req.method != "POST":
        raise google_error(404, f"no such Pub/Sub endpoint: {req.method} {req.path}", "NOT_FOUND")
    token = bearer(req)
    if token is None:
        raise google_error(401, "no Bearer token", "UNAUTHENTICATED")
    problem = STATE.check_token(STATE.google_tokens, token)
    if problem:
        raise google_error(401, problem, "UNAUTHENTICATED")
    project, topic = unquote(m.group(1)), unquote(m.group(2))
    if (project, topic) != (cfg["project"], cfg["topic"]):
        raise google_error(404, f"Resource not found (resource=projects/{project}/topics/{topic})",
                           "NOT_FOUND")
    if media_type(req)[0] != "application/json":
        raise google_error(400, "Content-Type is not application/json", "INVALID_ARGUMENT")
    try:
        body = json.loads(req.body)
    except ValueError as e:
        raise google_error(400, f"Invalid JSON payload received: {e}", "INVALID_ARGUMENT")
    messages = body.get("messages") if isinstance(body, dict) else None
    if not isinstance(messages, list) or not messages:
        raise google_error(400, "messages must be a non-empty array", "INVALID_ARGUMENT")
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            raise google_error(400, f"messages[{i}] is not an object", "INVALID_ARGUMENT")
        unknown = set(msg) - PUBSUB_MESSAGE_FIELDS
        if unknown:
            raise google_error(400, f"messages[{i}]: unknown fields {sorted(unknown)}", "INVALID_ARGUMENT")
        data = msg.get("data", "")
        try:
            if not isinstance(data, str):
                raise ValueError("not a string")
            base64.b64decode(data, validate=True)
        except (ValueError, binascii.Error) as e:
            raise google_error(400, f"messages[{i}].data is not base64: {e}", "INVALID_ARGUMENT")
        attributes = msg.get("attributes", {})
        if not isinstance(attributes, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in attributes.items()
        ):
            raise google_error(400, f"messages[{i}].attributes must map strings to strings",
                               "INVALID_ARGUMENT")
        if not data and not attributes:
            raise google_error(400, f"messages[{i}] has neither data nor attributes", "INVALID_ARGUMENT")
    with STATE.lock:
        first = STATE.next_message_id
        STATE.next_message_id += len(messages)
    return Answer.json(200, {"messageIds": [str(first + i) for i in range(len(messages))]})


# -- 4. OAuth 2.0 client credentials -----------------------------------------------


def check_oauth2_token(req: Request, cfg: dict) -> Answer:
    def error(status: int, code: str, reason: str, **headers):
        raise Reject(Answer.json(status, {"error": code, "error_description": reason}, **headers), reason)

    if req.method != "POST":
        error(405, "invalid_request", f"method {req.method} not allowed")
    if STATE.take_injected_failure("oauth2-token"):
        raise Reject(Answer.json(503, {"error": "temporarily_unavailable"}), "injected failure")

    # RFC 6749 2.3.1: Basic over form-urlencoded id and secret.
    auth = req.header("Authorization") or ""
    scheme, _, blob = auth.partition(" ")
    challenge = {"WWW-Authenticate": 'Basic realm="oauth2"'}
    if scheme.lower() != "basic":
        error(401, "invalid_client", "no HTTP Basic client authentication", **challenge)
    try:
        user, colon, password = base64.b64decode(blob.strip(), validate=True).decode().partition(":")
    except (ValueError, binascii.Error):
        error(401, "invalid_client", "Basic credentials are not base64", **challenge)
    if not colon:
        error(401, "invalid_client", "Basic credentials have no ':'", **challenge)
    client_id, client_secret = unquote_plus(user), unquote_plus(password)
    if not (hmac.compare_digest(client_id, cfg["client_id"])
            and hmac.compare_digest(client_secret, cfg["client_secret"])):
        error(401, "invalid_client", "wrong client_id or client_secret", **challenge)

    if media_type(req)[0] != "application/x-www-form-urlencoded":
        error(400, "invalid_request", "Content-Type is not application/x-www-form-urlencoded")
    try:
        params = form(req)
    except ValueError as e:
        error(400, "invalid_request", str(e))
    if "client_secret" in params:
        error(400, "invalid_request", "client authenticated both by Basic and in the body")
    if params.get("grant_type") != "client_credentials":
        error(400, "unsupported_grant_type", f"grant_type {params.get('grant_type')!r}")

    lifetime = int(cfg.get("expires_in", 3600))
    token = STATE.issue(STATE.oauth2_tokens, "", lifetime)
    answer = {"access_token": token, "token_type": "Bearer", "expires_in": lifetime}
    if "scope" in params:
        answer["scope"] = params["scope"]
    return Answer.json(200, answer, **{"Cache-Control": "no-store", "Pragma": "no-cache"})


def check_oauth2_api(req: Request, cfg: dict) -> Answer:
    token = bearer(req)
    problem = "no Bearer token" if token is None else STATE.check_token(STATE.oauth2_tokens, token)
    if problem:
        raise Reject(
            Answer.json(401, {"error": "invalid_token", "error_description": problem},
                        **{"WWW-Authenticate": 'Bearer error="invalid_token"'}),
            problem,
        )
    return Answer.json(200, {"ok": True})


# -- 5. InfluxDB v2 write and line protocol --------------------------------------

LP_FLOAT = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
LP_INT = re.compile(r"[-+]?\d+i")
LP_UINT = re.compile(r"\d+u")
LP_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)
LP_BOOL = {"t", "T", "true", "True", "TRUE", "f", "F", "false", "False", "FALSE"}
LP_TIMESTAMP = re.compile(r"-?\d+")
INT64 = (-(2**63), 2**63 - 1)
PRECISION_NS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}


def _cut(text: str, stops: str, start: int = 0) -> int:
    """Index of the first char in ``stops`` not escaped by a backslash, else len."""
    i = start
    while i < len(text):
        if text[i] == "\\":
            i += 2
        elif text[i] in stops:
            return i
        else:
            i += 1
    return len(text)


def _check_field_value(value: str) -> None:
    if not value:
        raise ValueError("missing field value")
    if LP_STRING.fullmatch(value) or value in LP_BOOL or LP_FLOAT.fullmatch(value):
        return
    if LP_INT.fullmatch(value):
        if not INT64[0] <= int(value[:-1]) <= INT64[1]:
            raise ValueError(f"integer out of range: {value}")
        return
    if LP_UINT.fullmatch(value):
        if int(value[:-1]) >= 2**64:
            raise ValueError(f"unsigned integer out of range: {value}")
        return
    raise ValueError(f"invalid field value {value!r}")


def _scan_fields(line: str, pos: int) -> int:
    """Check the field set starting at ``pos``; return the index just past it."""
    while True:
        eq = _cut(line, "=, ", pos)
        if eq == pos:
            raise ValueError("missing field key")
        if eq == len(line) or line[eq] != "=":
            raise ValueError(f"missing field value for {line[pos:eq]!r}")
        start = eq + 1
        if line.startswith('"', start):  # string: runs to the next unescaped quote
            end = start + 1
            while end < len(line) and line[end] != '"':
                end += 2 if line[end] == "\\" else 1
            if end >= len(line):
                raise ValueError("unterminated string")
            end += 1
        else:
            end = _cut(line, ", ", start)
        _check_field_value(line[start:end])
        if end == len(line) or line[end] == " ":
            return end
        if line[end] != ",":
            raise ValueError(f"invalid field format after {line[start:end]!r}")
        pos = end + 1


def parse_line(line: str, precision: str) -> None:
    """Raise ValueError when a line is not valid InfluxDB line protocol.

    measurement[,tag=value...] field=value[,field=value...] [timestamp]
    """
    series_end = _cut(line, " ")
    if series_end == len(line):
        raise ValueError("missing fields")
    series, tags = line[:series_end], []
    pos = 0
    while True:  # measurement, then tags, separated by unescaped commas
        comma = _cut(series, ",", pos)
        tags.append(series[pos:comma])
        if comma == len(series):
            break
        pos = comma + 1
    if not tags[0]:
        raise ValueError("missing measurement")
    for tag in tags[1:]:
        eq = _cut(tag, "=")
        if eq == 0 or eq == len(tag):
            raise ValueError(f"missing tag key or '=' in {tag!r}")
        if eq == len(tag) - 1:
            raise ValueError(f"missing tag value in {tag!r}")
        if _cut(tag, "=", eq + 1) != len(tag):
            raise ValueError(f"unescaped '=' in tag value {tag!r}")

    fields_end = _scan_fields(line, series_end + 1)
    timestamp = line[fields_end:].strip()
    if timestamp:
        if not LP_TIMESTAMP.fullmatch(timestamp):
            raise ValueError(f"bad timestamp {timestamp!r}")
        ns = int(timestamp) * PRECISION_NS[precision]
        if not INT64[0] < ns < INT64[1]:
            raise ValueError(f"time outside range {timestamp} (precision {precision})")


def check_influx(req: Request, cfg: dict) -> Answer:
    def error(status: int, code: str, reason: str):
        raise Reject(Answer.json(status, {"code": code, "message": reason}), reason)

    if req.path != "/api/v2/write" or req.method != "POST":
        error(404, "not found", f"path not found: {req.method} {req.path}")
    auth = req.header("Authorization") or ""
    scheme, _, token = auth.partition(" ")
    if scheme != "Token" or not hmac.compare_digest(token.strip(), cfg["token"]):
        error(401, "unauthorized", "unauthorized access")
    org, bucket = req.param("org"), req.param("bucket")
    if not org:
        error(400, "invalid", "Please provide either orgID or org")
    if org != cfg["org"]:
        error(404, "not found", f'organization name "{org}" not found')
    if not bucket:
        error(400, "invalid", "Please provide bucket or bucketID")
    if bucket != cfg["bucket"]:
        error(404, "not found", f'bucket "{bucket}" not found')
    precision = req.param("precision") or "ns"
    if precision not in PRECISION_NS:
        error(400, "invalid", f"invalid precision {precision!r}, want one of ns, us, ms, s")
    kind, params = media_type(req)
    if kind != "text/plain" or params.get("charset", "utf-8").lower() != "utf-8":
        error(400, "invalid", f"Content-Type {req.header('Content-Type')!r} is not text/plain; charset=utf-8")

    try:
        text = decoded_body(req).decode("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        error(400, "invalid", f"body is not (gzip of) UTF-8 text: {e}")
    points = 0
    for line in text.split("\n"):
        line = line.rstrip("\r").lstrip(" \t")
        if not line or line.startswith("#"):
            continue
        try:
            parse_line(line, precision)
        except ValueError as e:
            error(400, "invalid", f"unable to parse '{line}': {e}")
        points += 1
    if points == 0:
        error(400, "invalid", "writing requires points")
    return Answer(204)


def decoded_body(req: Request) -> bytes:
    """The body without its Content-Encoding (gzip is the one InfluxDB takes)."""
    if (req.header("Content-Encoding") or "").lower() == "gzip":
        return gzip.decompress(req.body)
    return req.body


# -- 6. Slack incoming webhook ------------------------------------------------------


def check_slack(req: Request, cfg: dict) -> Answer:
    def invalid(reason: str):
        raise Reject(Answer.text(400, "invalid_payload"), reason)

    if req.method != "POST":
        invalid(f"method {req.method}")
    if media_type(req)[0] != "application/json":
        invalid(f"Content-Type {req.header('Content-Type')!r} is not application/json")
    try:
        payload = json.loads(req.body)
    except ValueError as e:
        invalid(f"body is not JSON: {e}")
    if not isinstance(payload, dict):
        invalid("body is not a JSON object")
    text, blocks = payload.get("text"), payload.get("blocks")
    has_text = isinstance(text, str) and text.strip() != ""
    has_blocks = isinstance(blocks, list) and len(blocks) > 0
    if not (has_text or has_blocks):
        invalid('neither a non-empty "text" nor non-empty "blocks"')
    return Answer.text(200, "ok")


# -- routing, control endpoints and the server -------------------------------------


def route(path: str) -> tuple[str, str, object] | None:
    """(vendor key, config section, check) for a vendor path, else None."""
    slack = STATE.config.get("slack") or {}
    if path == "/aws" or path.startswith("/aws/"):
        return "aws", "aws", check_aws
    if path.startswith("/devices/"):
        return "azure", "azure", check_azure
    if path == "/google/token":
        return "google-token", "google", check_google_token
    if path.startswith("/google/"):
        return "google-publish", "google", check_google_publish
    if path == "/oauth2/token":
        return "oauth2-token", "oauth2", check_oauth2_token
    if path.startswith("/oauth2/api/"):
        return "oauth2-api", "oauth2", check_oauth2_api
    if path == "/api/v2/write":
        return "influx", "influx", check_influx
    if slack.get("path") and path == slack["path"]:
        return "slack", "slack", check_slack
    return None


def control(req: Request) -> Answer:
    """The test-facing endpoints under /_ (not logged)."""
    if req.method == "GET" and req.path == "/_log":
        with STATE.lock:
            return Answer.json(200, STATE.log)
    if req.method == "GET" and req.path == "/_count":
        vendor, verdict = req.param("vendor"), req.param("verdict")
        with STATE.lock:
            n = sum(1 for e in STATE.log
                    if e["vendor"] == vendor and (verdict is None or e["verdict"] == verdict))
        return Answer.json(200, n)
    if req.method == "POST" and req.path == "/_revoke":
        return Answer.json(200, {"revoked": STATE.revoke_all()})
    if req.method == "POST" and req.path == "/_fail_token":
        vendor = req.param("vendor") or "oauth2-token"
        try:
            count = int(req.param("count") or "1")
        except ValueError:
            return Answer.json(400, {"message": "count must be an integer"})
        if vendor not in STATE.fail_token:
            return Answer.json(400, {"message": f"vendor must be one of {sorted(STATE.fail_token)}"})
        with STATE.lock:
            STATE.fail_token[vendor] = count
        return Answer.json(200, {"vendor": vendor, "count": count})
    if req.method == "POST" and req.path == "/_reset_log":
        with STATE.lock:
            STATE.log.clear()
        return Answer.json(200, {"ok": True})
    return Answer.json(404, {"message": f"no control endpoint {req.method} {req.path}"})


def handle(req: Request) -> Answer:
    if req.path.startswith("/_"):
        return control(req)
    found = route(req.path)
    if found is None:
        vendor, answer, verdict = "unknown", Answer.json(404, {"message": "no such endpoint"}), "no such endpoint"
    else:
        vendor, section, check = found
        cfg = STATE.config.get(section)
        if cfg is None:
            answer = Answer.json(404, {"message": f"{section} is not configured"})
            verdict = "not configured"
        else:
            try:
                answer, verdict = check(req, cfg), "ok"
            except Reject as r:
                answer, verdict = r.answer, r.reason
    try:
        logged_body = decoded_body(req).decode("utf-8", "replace")
    except OSError:
        logged_body = req.body.decode("utf-8", "replace")
    headers: dict[str, str] = {}
    for k, v in req.headers:
        k = k.lower()
        headers[k] = f"{headers[k]}, {v}" if k in headers else v
    entry = {"vendor": vendor, "method": req.method, "path": req.target, "headers": headers,
             "body": logged_body, "verdict": verdict}
    with STATE.lock:
        STATE.log.append(entry)
    return answer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the vendors' servers do
    server_version = "edgehook-standin"
    verbose = False

    def _read_body(self) -> bytes:
        if (self.headers.get("Transfer-Encoding") or "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _serve(self):
        body = self._read_body()
        parts = urlsplit(self.path)
        req = Request(
            method=self.command,
            target=self.path,
            path=parts.path,
            query=parse_qsl(parts.query, keep_blank_values=True),
            headers=list(self.headers.items()),
            body=body,
            port=self.server.server_address[1],
        )
        try:
            answer = handle(req)
        except Exception as e:  # a bug here must show up in the test, not hang it
            answer = Answer.json(500, {"message": f"stand-in error: {type(e).__name__}: {e}"})
        self.send_response(answer.status)
        for k, v in answer.headers.items():
            self.send_header(k, v)
        if answer.status not in (204, 304):
            self.send_header("Content-Type", answer.content_type or "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        if self.command != "HEAD" and answer.status not in (204, 304):
            self.wfile.write(answer.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

    def log_message(self, format, *args):
        if self.verbose:
            super().log_message(format, *args)


def main(argv: list[str] | None = None) -> None:
    global STATE
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", required=True, help="JSON file with one section per vendor")
    ap.add_argument("--verbose", action="store_true", help="log each request to stderr")
    args = ap.parse_args(argv)
    with open(args.config) as f:
        STATE = State(json.load(f))
    Handler.verbose = args.verbose
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(f"listening on 127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Self-check of vendors.py: valid requests pass, tampered ones fail.

Run: python3 tests/standins/selfcheck.py   (exits non-zero on any failure)

Starts the stand-in twice (a full config, and one with most sections absent),
acts as each vendor's client with code that does not come from vendors.py
(botocore's signer, PyJWT, the SAS sample from Microsoft's page, hand-built
Basic auth), and checks the verification functions against AWS's published
SigV4 test-suite vectors.
"""

from __future__ import annotations

import base64
import datetime
import gzip
import hashlib
import hmac
import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from unittest import mock
from urllib.parse import quote_plus, urlencode

import botocore.auth
import jwt
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # leave no __pycache__ in the source tree
import vendors  # noqa: E402  (for the known-answer and parser checks only)

RESULTS: list[tuple[str, bool, str]] = []


def expect(name: str, ok: bool, detail: str = "") -> None:
    RESULTS.append((name, ok, detail))
    print(f"{'PASS' if ok else 'FAIL'} {name}" + ("" if ok else f"  -- {detail}"), flush=True)


# -- helpers -----------------------------------------------------------------


def rsa_key():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


class StandIn:
    def __init__(self, config: dict):
        self.cfg_file = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
        json.dump(config, self.cfg_file)
        self.cfg_file.close()
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "vendors.py"), "--config", self.cfg_file.name],
            stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        m = re.fullmatch(r"listening on 127\.0\.0\.1:(\d+)\n", line)
        if not m:
            self.stop()
            raise SystemExit(f"stand-in did not start: {line!r}")
        self.port = int(m.group(1))

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        os.unlink(self.cfg_file.name)

    def call(self, method, path, body=b"", headers=None, conn=None):
        own = conn is None
        conn = conn or http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        if own:
            conn.close()
        return resp.status, dict(resp.getheaders()), data

    def json(self, path):
        status, _, data = self.call("GET", path)
        assert status == 200, (path, status, data)
        return json.loads(data)


# -- AWS -----------------------------------------------------------------------


def aws_sign(port, method, path, body, cfg, *, secret=None, region=None, token=True, when=None):
    """Headers for a request signed by botocore's own SigV4 signer."""
    req = AWSRequest(method=method, url=f"http://127.0.0.1:{port}{path}", data=body, headers={
        "Content-Type": "application/json",
        "X-Amz-Content-Sha256": hashlib.sha256(body).hexdigest(),
    })
    creds = Credentials(cfg["access_key_id"], secret or cfg["secret_access_key"],
                        cfg.get("session_token") if token else None)
    signer = SigV4Auth(creds, cfg["service"], region or cfg["region"])
    if when is None:
        signer.add_auth(req)
    else:
        with mock.patch.object(botocore.auth, "get_current_datetime", lambda: when):
            signer.add_auth(req)
    return dict(req.headers.items())


def check_aws(s: StandIn, cfg: dict):
    path = "/aws/2015-03-31/functions/f/invocations?b=2&a=1&x=hello%20world"
    body = b'{"device":"d1","temp":21.5}'
    st, _, data = s.call("POST", path, body, aws_sign(s.port, "POST", path, body, cfg))
    expect("aws: signed POST with query passes", st == 200 and json.loads(data) == {"ok": True}, f"{st} {data!r}")

    st, _, data = s.call("GET", "/aws/status", b"", aws_sign(s.port, "GET", "/aws/status", b"", cfg))
    expect("aws: signed GET without body passes", st == 200, f"{st} {data!r}")

    h = aws_sign(s.port, "POST", path, body, cfg)
    other = body.replace(b"21.5", b"99.9")
    h["X-Amz-Content-Sha256"] = hashlib.sha256(other).hexdigest()
    st, _, data = s.call("POST", path, other, h)
    expect("aws: changed body (hash header updated) fails on the signature",
           st == 403 and b"signature does not match" in data, f"{st} {data!r}")

    st, _, data = s.call("POST", path, other, aws_sign(s.port, "POST", path, body, cfg))
    expect("aws: changed body (hash header stale) fails on X-Amz-Content-Sha256",
           st == 403 and b"X-Amz-Content-Sha256" in data, f"{st} {data!r}")

    st, _, data = s.call("POST", path.replace("a=1", "a=2"), body, aws_sign(s.port, "POST", path, body, cfg))
    expect("aws: changed query fails", st == 403, f"{st} {data!r}")

    st, _, data = s.call("POST", path, body, aws_sign(s.port, "POST", path, body, cfg, secret="wrong" * 8))
    expect("aws: wrong secret key fails", st == 403 and b"signature" in data, f"{st} {data!r}")

    st, _, data = s.call("POST", path, body, aws_sign(s.port, "POST", path, body, cfg, region="eu-west-1"))
    expect("aws: wrong region in the scope fails", st == 403 and b"Credential scope" in data, f"{st} {data!r}")

    old = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) - datetime.timedelta(minutes=20)
    st, _, data = s.call("POST", path, body, aws_sign(s.port, "POST", path, body, cfg, when=old))
    expect("aws: X-Amz-Date 20 minutes old fails", st == 403 and b"15 minutes" in data, f"{st} {data!r}")

    st, _, data = s.call("POST", path, body, aws_sign(s.port, "POST", path, body, cfg, token=False))
    expect("aws: missing session token fails", st == 403 and b"Security-Token" in data, f"{st} {data!r}")

    h = aws_sign(s.port, "POST", path, body, cfg)
    h["Content-Type"] = "text/plain"
    st, _, data = s.call("POST", path, body, h)
    expect("aws: changed signed header fails", st == 403, f"{st} {data!r}")

    # AWS's published SigV4 test suite (get-vanilla, get-vanilla-query-order-key-case).
    secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
    base = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, " \
           "SignedHeaders=host;x-amz-date, Signature="
    vectors = [
        ("https://example.amazonaws.com/", "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
        ("https://example.amazonaws.com/?Param2=value2&Param1=value1",
         "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"),
    ]
    for url, sig in vectors:
        for tamper in (False, True):
            s_ = sig[:-1] + ("0" if sig[-1] != "0" else "1") if tamper else sig
            headers = [("Host", "example.amazonaws.com"), ("X-Amz-Date", "20150830T123600Z"),
                       ("Authorization", base + s_)]
            problem = vendors.verify_sigv4("GET", url, headers, b"", "AKIDEXAMPLE", secret,
                                           "us-east-1", "service")
            expect(f"aws: test-suite vector {url} {'tampered fails' if tamper else 'verifies'}",
                   (problem is not None) if tamper else (problem is None), str(problem))


# -- Azure -----------------------------------------------------------------------


def azure_token(uri, key, policy_name, expiry):
    """generate_sas_token() as printed on Microsoft's SAS page."""
    ttl = int(expiry)
    sign_key = "%s\n%d" % (quote_plus(uri), ttl)
    signature = base64.b64encode(hmac.new(base64.b64decode(key), sign_key.encode("utf-8"),
                                          hashlib.sha256).digest())
    rawtoken = {"sr": uri, "sig": signature, "se": str(ttl)}
    if policy_name is not None:
        rawtoken["skn"] = policy_name
    return "SharedAccessSignature " + urlencode(rawtoken)


def check_azure(s: StandIn, cfg: dict, policy: str | None = None, label: str = "azure"):
    uri = f"{cfg['hub']}/devices/{cfg['device']}"
    path = f"/devices/{cfg['device']}/messages/events?api-version=2020-03-13"
    body = b'{"temp":21.5}'
    later = time.time() + 3600

    def send(token, p=path):
        return s.call("POST", p, body, {"Authorization": token, "Content-Type": "application/json"})

    st, _, data = send(azure_token(uri, cfg["key"], policy, later))
    expect(f"{label}: valid SAS gets 204", st == 204 and data == b"", f"{st} {data!r}")
    st, _, data = send(azure_token(uri.upper(), cfg["key"], policy, later))
    expect(f"{label}: sr compared case-insensitively", st == 204, f"{st} {data!r}")
    wrong_key = base64.b64encode(b"k" * 32).decode()
    st, _, data = send(azure_token(uri, wrong_key, policy, later))
    expect(f"{label}: wrong key fails", st == 401 and b"signature" in data, f"{st} {data!r}")
    st, _, data = send(azure_token(uri, cfg["key"], policy, time.time() - 10))
    expect(f"{label}: expired se fails", st == 401 and b"expired" in data, f"{st} {data!r}")
    st, _, data = send(azure_token(f"{cfg['hub']}/devices/other", cfg["key"], policy, later))
    expect(f"{label}: sr of another device fails", st == 401 and b"sr is" in data, f"{st} {data!r}")
    st, _, data = send(azure_token(uri, cfg["key"], "someotherpolicy", later))
    expect(f"{label}: wrong skn fails", st == 401 and b"skn" in data, f"{st} {data!r}")
    good = azure_token(uri, cfg["key"], policy, later)
    tampered = re.sub(r"se=(\d+)", lambda m: f"se={int(m.group(1)) + 60}", good)
    st, _, data = send(tampered)
    expect(f"{label}: se changed after signing fails", st == 401, f"{st} {data!r}")
    st, _, data = send(good, path.split("?")[0])
    expect(f"{label}: missing api-version fails", st == 400 and b"api-version" in data, f"{st} {data!r}")
    st, _, data = send(good.replace("SharedAccessSignature ", "Bearer "))
    expect(f"{label}: non-SAS Authorization fails", st == 401, f"{st} {data!r}")


# -- Google ------------------------------------------------------------------------


def google_assertion(port, cfg, private_pem, **override):
    now = int(time.time())
    claims = {"iss": cfg["client_email"], "scope": cfg["scope"],
              "aud": f"http://127.0.0.1:{port}/google/token", "iat": now, "exp": now + 3600}
    claims.update(override)
    return jwt.encode(claims, private_pem, algorithm="RS256", headers={"typ": "JWT"})


def check_google(s: StandIn, cfg: dict, private_pem: str):
    form = {"Content-Type": "application/x-www-form-urlencoded"}

    def token_request(assertion):
        body = urlencode({"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                          "assertion": assertion}).encode()
        return s.call("POST", "/google/token", body, form)

    st, _, data = token_request(google_assertion(s.port, cfg, private_pem))
    tok = json.loads(data) if st == 200 else {}
    expect("google: valid JWT grant issues a ya29 token",
           st == 200 and tok.get("access_token", "").startswith("ya29.")
           and tok.get("expires_in") == 3599 and tok.get("token_type") == "Bearer", f"{st} {data!r}")

    other_private, _ = rsa_key()
    st, _, data = token_request(google_assertion(s.port, cfg, other_private))
    expect("google: JWT signed by another key fails", st == 400 and b"invalid_grant" in data, f"{st} {data!r}")
    for name, override in [
        ("audience of the real token URI", {"aud": "https://oauth2.googleapis.com/token"}),
        ("another issuer", {"iss": "x@p.iam.gserviceaccount.com"}),
        ("another scope", {"scope": "https://www.googleapis.com/auth/cloud-platform"}),
        ("exp - iat over an hour", {"exp": int(time.time()) + 7200}),
        ("expired", {"iat": int(time.time()) - 7200, "exp": int(time.time()) - 3700}),
    ]:
        st, _, data = token_request(google_assertion(s.port, cfg, private_pem, **override))
        expect(f"google: JWT with {name} fails", st == 400, f"{st} {data!r}")
    hs = jwt.encode({"iss": cfg["client_email"]}, "x" * 32, algorithm="HS256")
    st, _, data = token_request(hs)
    expect("google: HS256 JWT fails", st == 400, f"{st} {data!r}")

    publish = f"/google/v1/projects/{cfg['project']}/topics/{cfg['topic']}:publish"
    msgs = {"messages": [{"data": base64.b64encode(b"hello").decode(), "attributes": {"k": "v"}},
                         {"data": base64.b64encode(b"world").decode()}]}
    auth = {"Authorization": f"Bearer {tok.get('access_token')}", "Content-Type": "application/json"}
    st, _, data = s.call("POST", publish, json.dumps(msgs).encode(), auth)
    expect("google: publish with the issued token", st == 200 and json.loads(data)["messageIds"] == ["1", "2"],
           f"{st} {data!r}")
    st, _, data = s.call("POST", publish, json.dumps(msgs).encode(),
                         {**auth, "Authorization": "Bearer ya29.not-issued"})
    expect("google: publish with an unknown token gets 401", st == 401, f"{st} {data!r}")
    bad = {"messages": [{"data": "not base64!"}]}
    st, _, data = s.call("POST", publish, json.dumps(bad).encode(), auth)
    expect("google: publish with non-base64 data gets 400", st == 400, f"{st} {data!r}")
    st, _, data = s.call("POST", publish, json.dumps({"messages": []}).encode(), auth)
    expect("google: publish with no messages gets 400", st == 400, f"{st} {data!r}")
    bad = {"messages": [{"data": "aGk=", "attributes": {"n": 1}}]}
    st, _, data = s.call("POST", publish, json.dumps(bad).encode(), auth)
    expect("google: non-string attribute gets 400", st == 400, f"{st} {data!r}")
    other = f"/google/v1/projects/{cfg['project']}/topics/other:publish"
    st, _, data = s.call("POST", other, json.dumps(msgs).encode(), auth)
    expect("google: unknown topic gets 404", st == 404, f"{st} {data!r}")


# -- OAuth2 -----------------------------------------------------------------------------


def check_oauth2(s: StandIn, cfg: dict) -> int:
    """Returns how many token requests it made."""
    made = 0

    def basic(user, password):
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    good = basic(quote_plus(cfg["client_id"]), quote_plus(cfg["client_secret"]))

    def token(auth, body=b"grant_type=client_credentials&scope=read%20write"):
        nonlocal made
        made += 1
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if auth:
            headers["Authorization"] = auth
        return s.call("POST", "/oauth2/token", body, headers)

    st, h, data = token(good)
    tok = json.loads(data).get("access_token") if st == 200 else None
    expect("oauth2: Basic with form-encoded id/secret issues a token",
           st == 200 and json.loads(data)["token_type"] == "Bearer"
           and json.loads(data)["expires_in"] == cfg["expires_in"] and h.get("Cache-Control") == "no-store",
           f"{st} {data!r}")
    st, _, data = token(basic(cfg["client_id"], cfg["client_secret"]))
    expect("oauth2: Basic without form-encoding fails (secret has + and %)",
           st == 401 and json.loads(data)["error"] == "invalid_client", f"{st} {data!r}")
    st, _, data = token(basic(quote_plus(cfg["client_id"]), "wrong"))
    expect("oauth2: wrong secret gets invalid_client", st == 401 and b"invalid_client" in data, f"{st} {data!r}")
    st, _, data = token(None, urlencode({"grant_type": "client_credentials", "client_id": cfg["client_id"],
                                         "client_secret": cfg["client_secret"]}).encode())
    expect("oauth2: credentials in the body only get 401", st == 401, f"{st} {data!r}")
    st, _, data = token(good, b"grant_type=password")
    expect("oauth2: other grant_type gets 400", st == 400 and b"unsupported_grant_type" in data, f"{st} {data!r}")

    st, _, data = s.call("GET", "/oauth2/api/things?x=1", b"", {"Authorization": f"Bearer {tok}"})
    expect("oauth2: API call with the token passes", st == 200, f"{st} {data!r}")
    st, _, data = s.call("POST", "/oauth2/api/things", b"{}", {"Authorization": "Bearer nope"})
    expect("oauth2: API call with an unknown token gets 401", st == 401, f"{st} {data!r}")
    st, _, data = s.call("POST", "/oauth2/api/things", b"{}")
    expect("oauth2: API call without a token gets 401", st == 401, f"{st} {data!r}")

    st, _, data = s.call("POST", "/_revoke")
    expect("oauth2: /_revoke", st == 200, f"{st} {data!r}")
    st, _, data = s.call("GET", "/oauth2/api/things", b"", {"Authorization": f"Bearer {tok}"})
    expect("oauth2: revoked token gets 401", st == 401 and b"revoked" in data, f"{st} {data!r}")
    st, _, data = token(good)
    tok2 = json.loads(data).get("access_token") if st == 200 else None
    st, _, data = s.call("GET", "/oauth2/api/things", b"", {"Authorization": f"Bearer {tok2}"})
    expect("oauth2: a fresh token after revoke works", st == 200, f"{st} {data!r}")

    s.call("POST", "/_fail_token?count=2")
    statuses = [token(good)[0] for _ in range(3)]
    expect("oauth2: /_fail_token?count=2 fails the next two token requests", statuses == [503, 503, 200],
           str(statuses))
    return made


# -- Influx -------------------------------------------------------------------------------

VALID_LINES = [
    'weather,location=us\\,midwest,sensor\\ id=a1 temperature=82.5,humidity=71i,ok=true,'
    'note="hello, \\"world\\" x=1" 1465839830100400200',
    "cpu usage=0.5",
    "cpu\\ load,host=h1 free=123u,used=1e3,neg=-1.5E-2,label=\"a b\",flag=F",
    "m,t=\"quoted\" f=1i -1",
    "m f=\"\"",
    "m\\,x f=.5",
]
INVALID_LINES = [
    "cpu",
    "cpu ",
    "cpu usage=",
    "cpu usage=1.5i",
    'cpu note="unterminated',
    "cpu usage=1 abc",
    "cpu,host= usage=1",
    "cpu,=h usage=1",
    "cpu,host usage=1",
    ",host=h usage=1",
    "cpu usage=yes",
    "cpu usage=1,",
    "cpu =1",
    "cpu usage=9223372036854775808i",
    'cpu s="a"b=1',
]


def check_influx(s: StandIn, cfg: dict):
    for line in VALID_LINES:
        try:
            vendors.parse_line(line, "ns")
            expect(f"influx parser accepts {line!r}", True)
        except ValueError as e:
            expect(f"influx parser accepts {line!r}", False, str(e))
    for line in INVALID_LINES:
        try:
            vendors.parse_line(line, "ns")
            expect(f"influx parser rejects {line!r}", False, "accepted")
        except ValueError:
            expect(f"influx parser rejects {line!r}", True)

    path = f"/api/v2/write?org={quote_plus(cfg['org'])}&bucket={quote_plus(cfg['bucket'])}&precision=ns"
    headers = {"Authorization": f"Token {cfg['token']}", "Content-Type": "text/plain; charset=utf-8"}
    body = ("\n".join(VALID_LINES[:3]) + "\n# a comment\n\n").encode()
    st, _, data = s.call("POST", path, body, headers)
    expect("influx: valid write gets 204", st == 204, f"{st} {data!r}")
    st, _, data = s.call("POST", path, body, {**headers, "Content-Type": "text/plain"})
    expect("influx: text/plain without charset accepted", st == 204, f"{st} {data!r}")
    st, _, data = s.call("POST", path, gzip.compress(body), {**headers, "Content-Encoding": "gzip"})
    expect("influx: gzip body accepted", st == 204, f"{st} {data!r}")
    st, _, data = s.call("POST", path.replace("precision=ns", "precision=s"),
                         b"cpu usage=1 1700000000\n", headers)
    expect("influx: seconds precision accepted", st == 204, f"{st} {data!r}")
    st, _, data = s.call("POST", path.replace("precision=ns", "precision=s"),
                         b"cpu usage=1 1700000000000000000\n", headers)
    expect("influx: nanosecond stamp with precision=s gets 400", st == 400 and b"outside range" in data,
           f"{st} {data!r}")
    st, _, data = s.call("POST", path, b"cpu usage=1\ncpu usage=1.5i\n", headers)
    ok = st == 400 and json.loads(data)["code"] == "invalid" and "cpu usage=1.5i" in json.loads(data)["message"]
    expect("influx: bad line gets 400 invalid naming the line", ok, f"{st} {data!r}")
    st, _, data = s.call("POST", path, b"\n\n", headers)
    expect("influx: no points gets 400", st == 400, f"{st} {data!r}")
    st, _, data = s.call("POST", path, body, {**headers, "Authorization": "Token wrong"})
    expect("influx: wrong token gets 401", st == 401, f"{st} {data!r}")
    st, _, data = s.call("POST", path, body, {**headers, "Authorization": f"Bearer {cfg['token']}"})
    expect("influx: Bearer scheme gets 401", st == 401, f"{st} {data!r}")
    st, _, data = s.call("POST", path.replace(f"bucket={quote_plus(cfg['bucket'])}", "bucket=other"), body, headers)
    expect("influx: unknown bucket gets 404", st == 404, f"{st} {data!r}")
    st, _, data = s.call("POST", path.replace("precision=ns", "precision=h"), body, headers)
    expect("influx: bad precision gets 400", st == 400, f"{st} {data!r}")
    st, _, data = s.call("POST", path, body, {**headers, "Content-Type": "application/json"})
    expect("influx: application/json gets 400", st == 400, f"{st} {data!r}")


# -- Slack --------------------------------------------------------------------------


def check_slack(s: StandIn, cfg: dict):
    js = {"Content-Type": "application/json"}
    st, h, data = s.call("POST", cfg["path"], b'{"text":"device d1 is hot"}', js)
    expect("slack: text message gets 200 ok", st == 200 and data == b"ok"
           and h.get("Content-Type", "").startswith("text/plain"), f"{st} {data!r}")
    blocks = {"blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "*hot*"}}]}
    st, _, data = s.call("POST", cfg["path"], json.dumps(blocks).encode(), js)
    expect("slack: blocks message gets 200 ok", st == 200 and data == b"ok", f"{st} {data!r}")
    for name, body, headers in [
        ("empty text", b'{"text":""}', js),
        ("no text", b'{"username":"x"}', js),
        ("not JSON", b"text=hi", js),
        ("a JSON array", b'["hi"]', js),
        ("form content type", b'{"text":"hi"}', {"Content-Type": "application/x-www-form-urlencoded"}),
    ]:
        st, _, data = s.call("POST", cfg["path"], body, headers)
        expect(f"slack: {name} gets 400 invalid_payload", st == 400 and data == b"invalid_payload",
               f"{st} {data!r}")
    st, _, data = s.call("POST", cfg["path"] + "x", b'{"text":"hi"}', js)
    expect("slack: other path gets 404", st == 404, f"{st} {data!r}")

    # A chunked body and several requests on one kept-alive connection.
    conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=10)
    conn.request("POST", cfg["path"], body=iter([b'{"text":', b'"chunked"}']), headers=js, encode_chunked=True)
    r = conn.getresponse()
    first = (r.status, r.read())
    st, _, data = s.call("POST", cfg["path"], b'{"text":"again"}', js, conn=conn)
    conn.close()
    expect("slack: chunked body, then a second request on the same connection",
           first == (200, b"ok") and (st, data) == (200, b"ok"), f"{first} {st} {data!r}")


# -- main ------------------------------------------------------------------------------


def main() -> int:
    private_pem, public_pem = rsa_key()
    config = {
        "aws": {"access_key_id": "AKIDSTANDIN0000000001", "secret_access_key": "s3cr3t/Key+stand-in",
                "region": "us-east-1", "service": "lambda", "session_token": "FwoGZXIvYXdzEXAMPLE"},
        "azure": {"hub": "myhub.azure-devices.net", "device": "dev1",
                  "key": base64.b64encode(os.urandom(32)).decode(), "key_name": None},
        "google": {"public_key_pem": public_pem, "client_email": "sa@p.iam.gserviceaccount.com",
                   "scope": "https://www.googleapis.com/auth/pubsub", "project": "p", "topic": "t"},
        "oauth2": {"client_id": "edge hook", "client_secret": "s3+cr%t:x/y=", "expires_in": 1800},
        "influx": {"token": "tok", "org": "my org", "bucket": "b"},
        "slack": {"path": "/services/T000/B000/XXXX"},
    }
    s = StandIn(config)
    try:
        check_aws(s, config["aws"])
        check_azure(s, config["azure"])
        check_google(s, config["google"], private_pem)
        token_requests = check_oauth2(s, config["oauth2"])
        check_influx(s, config["influx"])
        check_slack(s, config["slack"])

        log = s.json("/_log")
        slack_ok = [e for e in log if e["vendor"] == "slack" and e["verdict"] == "ok"]
        e = slack_ok[0] if slack_ok else {}
        expect("log: entries carry vendor, method, path, lowercased headers, body, verdict",
               set(e) == {"vendor", "method", "path", "headers", "body", "verdict"}
               and e["headers"].get("content-type") == "application/json"
               and e["body"] == '{"text":"device d1 is hot"}' and e["method"] == "POST",
               json.dumps(e))
        expect("log: rejected requests carry the reason",
               any(x["vendor"] == "azure" and "expired" in x["verdict"] for x in log))
        expect("log: control endpoints are not logged", not any(x["path"].startswith("/_") for x in log))
        n = s.json("/_count?vendor=oauth2-token")
        expect("count: oauth2-token counts every token request", n == token_requests,
               f"{n} != {token_requests}")
        n_ok = s.json("/_count?vendor=aws&verdict=ok")
        expect("count: verdict filter", n_ok == 2, str(n_ok))
        st, _, _ = s.call("POST", "/_reset_log")
        expect("log: /_reset_log empties it", st == 200 and s.json("/_log") == [])
    finally:
        s.stop()

    # Absent sections answer 404; a policy (skn) token for the device.
    policy_cfg = {"azure": {**config["azure"], "key_name": "device"}}
    s = StandIn(policy_cfg)
    try:
        for path in ["/aws/x", "/google/token", "/oauth2/token", "/api/v2/write?org=o&bucket=b",
                     config["slack"]["path"]]:
            st, _, data = s.call("POST", path, b"{}")
            expect(f"absent section: {path} gets 404", st == 404, f"{st} {data!r}")
        check_azure(s, policy_cfg["azure"], policy="device", label="azure with skn")
        uri = f"{config['azure']['hub']}/devices/dev1"
        st, _, _ = s.call("POST", "/devices/dev1/messages/events?api-version=2020-03-13", b"x",
                          {"Authorization": azure_token(uri, config["azure"]["key"], None, time.time() + 60)})
        expect("azure with skn: token without skn fails", st == 401)
    finally:
        s.stop()

    failed = sum(1 for _, ok, _ in RESULTS if not ok)
    print(f"{len(RESULTS) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

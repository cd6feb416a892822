"""Verify X-Edge-Session in Python with PyJWT (Debian: python3-jwt, python3-cryptography).

    from edge_session_origin import EdgeSessionVerifier
    verify = EdgeSessionVerifier("https://edge.example.com/.well-known/edge-session/jwks.json")
    claims = verify(request.headers.get("X-Edge-Session"))   # None unless valid

Run as a program it is a small origin (the project's tests put it behind the
layer): `python3 edge_session_origin.py --jwks URL --port 0 --id py-1` prints
`listening <id> <url>`, answers GET / with the verified claims as JSON (401
without a valid header; the document read from the layer when the header left
it out), and POST / with an X-Edge-Session-Set of the JSON body (json.dumps escapes every non-ASCII character, so the header stays ASCII).
"""

import argparse
import json
import sys
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt  # PyJWT >= 2.4; EdDSA and ES256 need the cryptography package

TYP = "edge-session+jwt"
ALGORITHMS = ["EdDSA", "ES256"]  # an explicit list, never the token's own alg (RFC 8725 3.1)


class EdgeSessionVerifier:
    def __init__(self, jwks_url, issuer="edge-session", audience="edge-session:origin", leeway=5):
        # PyJWKClient caches the key set and fetches it again for a kid it does not know (key rotation).
        self.jwks = jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=300)
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway

    def __call__(self, header_value):
        """The verified claims, or None for a missing or invalid header."""
        if not header_value:
            return None
        try:
            # PyJWT does not check `typ`: do it, so an affinity token (another typ) is never accepted here.
            header = jwt.get_unverified_header(header_value)
            if str(header.get("typ", "")).lower() not in (TYP, "application/" + TYP):
                return None
            key = self.jwks.get_signing_key_from_jwt(header_value).key
            claims = jwt.decode(
                header_value,
                key,
                algorithms=ALGORITHMS,
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iat", "iss", "aud", "sid", "ver"]},
            )
        except (jwt.PyJWTError, ValueError):
            return None
        return claims


def read_document(jwks_url, header_value, timeout=5):
    """The document a header left out (data_omitted), from the layer's document endpoint, or None.

    The endpoint sits beside the JWKS and answers only for the header's own sid and ver (409 once the
    session has moved on): never write a patch built without the document.
    """
    url = jwks_url.rsplit("/", 1)[0] + "/document"
    request = urllib.request.Request(url, headers={"X-Edge-Session": header_value, "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as res:
            return json.load(res)
    except (urllib.error.URLError, ValueError):
        return None


def header_json(value):
    """JSON for a response header: json.dumps escapes non-ASCII as \\uXXXX, which the layer reads back exactly."""
    return json.dumps(value, ensure_ascii=True, separators=(",", ":"))


def serve(verify, jwks_url, origin_id, host, port):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _json(self, status, body, headers=None):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.send_header("x-served-by", origin_id)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _session(self):
            """Verified claims, with the document read from the layer when the header left it out."""
            header_value = self.headers.get("X-Edge-Session")
            claims = verify(header_value)
            if claims is not None and claims.get("data_omitted"):
                document = read_document(jwks_url, header_value)
                if document is None or document.get("ver") != claims["ver"]:
                    return claims, False
                claims = dict(claims, data=document["data"])
            return claims, True

        def do_GET(self):
            claims, _ = self._session()
            if claims is None:
                return self._json(401, {"error": {"code": "ERR_EDGE_SESSION_REQUIRED", "message": "no valid header"}})
            self._json(200, {"origin": origin_id, "claims": claims})

        def do_POST(self):
            claims, readable = self._session()
            if claims is None:
                return self._json(401, {"error": {"code": "ERR_EDGE_SESSION_REQUIRED", "message": "no valid header"}})
            length = int(self.headers.get("content-length") or 0)
            patch = json.loads(self.rfile.read(length) or b"{}")
            if not readable:
                # The document could not be read: never write a patch built without it.
                return self._json(503, {"error": {"code": "ERR_DOCUMENT_UNAVAILABLE", "message": "data omitted"}})
            self._json(
                200,
                {"ok": True},
                {"X-Edge-Session-Set": header_json(patch), "X-Edge-Session-Set-If-Version": str(claims["ver"])},
            )

    server = ThreadingHTTPServer((host, port), Handler)
    print("listening %s http://%s:%d" % (origin_id, host, server.server_address[1]), flush=True)
    server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--jwks", required=True)
    parser.add_argument("--id", default="py-1")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    try:
        serve(EdgeSessionVerifier(args.jwks), args.jwks, args.id, args.host, args.port)
    except KeyboardInterrupt:
        sys.exit(0)

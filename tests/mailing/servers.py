"""Real SMTP servers for the tests (aiosmtpd in a thread): plain, STARTTLS, implicit TLS, AUTH, and
misbehaving ones (550 for one address, 421 then 250, connection dropped), plus a test certificate
made with ``cryptography`` at test time."""
from __future__ import annotations

import datetime as dt
import email
import email.policy
import ipaddress
import socket
import ssl
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 / localhost: (cert.pem, key.pem)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def server_tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert), str(key))
    return context


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    secure: bool
    login: str | None

    @property
    def message(self):
        return email.message_from_bytes(self.data, policy=email.policy.default)


@dataclass
class Handler:
    """What the server does. ``rcpt_replies``: {address: "550 …"}; ``mail_replies`` / ``data_replies``:
    replies consumed one per transaction (then "250 OK"); ``drop_on_data``: close the connection
    instead of answering DATA (for the first N transactions, -1 = always)."""

    rcpt_replies: dict = field(default_factory=dict)
    mail_replies: list = field(default_factory=list)
    data_replies: list = field(default_factory=list)
    drop_on_data: int = 0
    received: list = field(default_factory=list)
    transactions: int = 0

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.mail_replies:
            return self.mail_replies.pop(0)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.rcpt_replies.get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.transactions += 1
        if self.drop_on_data and (self.drop_on_data < 0 or self.transactions <= self.drop_on_data):
            server.transport.close()
            return "421 closing"  # never read: the connection is gone
        if self.data_replies:
            reply = self.data_replies.pop(0)
            if not reply.startswith("250"):
                return reply
        login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content
                                      or envelope.content, bool(session.ssl), login))
        return "250 Message accepted for delivery"


class Authenticator:
    """Accepts one login/password; ``calls`` keeps every (mechanism, login, password) received."""

    def __init__(self, login: str, password: str):
        self.login, self.password = login.encode(), password.encode()
        self.calls: list[tuple] = []

    def __call__(self, server, session, envelope, mechanism, auth_data):
        if isinstance(auth_data, LoginPassword):
            self.calls.append((mechanism, auth_data.login.decode(), auth_data.password.decode()))
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (self.login,
                                                                                                self.password)
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


@dataclass
class XOAuth2Handler(Handler):
    """Office 365-like XOAUTH2 (``auth_XOAUTH2`` hook of aiosmtpd): accepts ``tokens`` {mailbox: token};
    on refusal sends the 334 JSON challenge, then ``refusal`` once the client answers.
    ``auth_calls`` keeps every (mailbox, token) received."""

    tokens: dict = field(default_factory=dict)
    refusal: str = "535 5.7.3 Authentication unsuccessful [SN4PR0501CA0001.namprd05.prod.outlook.com]"
    auth_calls: list = field(default_factory=list)

    async def auth_XOAUTH2(self, server, args):
        import base64

        if len(args) > 1:
            blob = base64.b64decode(args[1])
        else:
            blob = await server.challenge_auth("", encode_to_b64=False)
        fields = dict(part.split("=", 1) for part in blob.decode().split("\x01") if "=" in part)
        mailbox, token = fields.get("user", ""), fields.get("auth", "").removeprefix("Bearer ")
        self.auth_calls.append((mailbox, token))
        if self.tokens.get(mailbox) == token:
            return AuthResult(success=True, auth_data=LoginPassword(mailbox.encode(), b""))
        await server.challenge_auth('{"status":"401","schemes":"bearer","scope":"https://outlook.office.com/SMTP.Send"}')
        return AuthResult(success=False, handled=False, message=self.refusal)


class FakeTokenProvider:
    """In place of msal (``settings.MAIL_OAUTH_TOKEN_PROVIDER``): hands out "jeton-1", "jeton-2"… or
    ``error`` (msal's error dict); ``calls`` keeps the credentials it was asked with."""

    def __init__(self):
        self.calls: list[dict] = []
        self.error: dict | None = None
        self.expires_in = 3599

    def __call__(self, **kwargs):
        self.calls.append(kwargs)
        if self.error:
            return dict(self.error)
        return {"access_token": f"jeton-{len(self.calls)}", "token_type": "Bearer", "expires_in": self.expires_in}


class SmtpServer:
    def __init__(self, handler: Handler | None = None, *, starttls: tuple | None = None, implicit_tls: tuple | None = None,
                 auth: tuple[str, str] | None = None, auth_required: bool = False):
        self.handler = handler or Handler()
        self.port = free_port()
        kwargs = {}
        if starttls:
            kwargs.update(tls_context=server_tls_context(*starttls), require_starttls=True)
        self.authenticator = Authenticator(*auth) if auth else None
        if auth:
            kwargs.update(authenticator=self.authenticator, auth_required=True, auth_require_tls=bool(starttls))
        elif auth_required:  # mechanisms of the handler only (auth_XOAUTH2)
            kwargs.update(auth_required=True, auth_require_tls=bool(starttls), auth_exclude_mechanism=["PLAIN"])
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port,
                                     ssl_context=server_tls_context(*implicit_tls) if implicit_tls else None,
                                     **kwargs)

    def _start(self):
        with warnings.catch_warnings():  # AUTH without STARTTLS on purpose (implicit TLS, refusal tests)
            warnings.simplefilter("ignore", UserWarning)
            self.controller.start()

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    def __enter__(self):
        self._start()
        return self

    def __exit__(self, *exc):
        self.controller.stop()


class DroppingServer:
    """Accepts TCP connections and closes them at once (no greeting)."""

    def __init__(self):
        self.port = free_port()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(5)
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self):
        while not self.stopping:
            try:
                conn, _addr = self.sock.accept()
            except OSError:
                return
            conn.close()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping = True
        self.sock.close()

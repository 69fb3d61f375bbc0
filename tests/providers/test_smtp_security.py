"""Issue 9, item 5: SMTP that keeps secrets secret and does not waste time; item 3's SMTP part.

Every server here is aiosmtpd on 127.0.0.1 (tests/fakes/smtp.py); TLS uses a certificate made
on the spot with `cryptography`. "At once" means: no retry was waited for and nobody was
reported failed one by one.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import socket
import ssl
import threading
from email import message_from_string, policy
from pathlib import Path
from typing import Any

import pytest

from newsletter.config import Settings, load_settings
from newsletter.errors import ProviderError
from newsletter.issues import find_issue
from newsletter.models import RenderedEmail
from newsletter.providers import Letter, Outcome, Outgoing, RetryPolicy, State
from newsletter.providers.safety import is_loopback, redact
from newsletter.providers.smtp import SMTPProvider
from newsletter.render.compose import render_issue
from newsletter.render.message import recipient_for
from tests.fakes import fixtures
from tests.fakes.smtp import FakeSMTP, RecordingHandler, self_signed
from tests.helpers import deliver_in_slots

ROOT = Path(__file__).resolve().parents[2]
SLUG = "the-fear-of-entering-the-room"
PASSWORD = "Tide-Pool-7f3a!"
SENDER = "hailey@haileyscomet.example.com"

smtp_server = fixtures.smtp_server  # a pytest fixture, shared by the test modules
CONNECTIONS = 1  # [smtp] connections of the providers provider() builds; the fixture below sets it


@pytest.fixture(autouse=True, params=[1, 4], ids=["1-connection", "4-connections"])
def connections(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """Every rule holds with one connection and with four driven from four threads (issue 14)."""
    monkeypatch.setattr(f"{__name__}.CONNECTIONS", request.param)
    monkeypatch.setenv("NEWSLETTER_SMTP__CONNECTIONS", str(request.param))
    return int(request.param)


def same(got: list[str], expected: list[str]) -> bool:
    """The same messages; in the list's order too over one connection."""
    return got == expected if CONNECTIONS == 1 else sorted(got) == sorted(expected)


class EchoingHandler(RecordingHandler):
    """Refuses chosen recipients and quotes the login's password back, raw and in base64."""

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,  # noqa: N802
                          rcpt_options: list[str]) -> str:
        if address.lower() in self.refuse:
            secret = session.auth_data.password.decode()
            blob = base64.b64encode(f"\0hailey\0{secret}".encode()).decode()
            return f"550 5.7.1 <{address}> refused; you said {secret} ({blob})"
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)


class RelayDenied(RecordingHandler):
    """Postfix without a login: every outside recipient is 554 5.7.1 Relay access denied."""

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,  # noqa: N802
                          rcpt_options: list[str]) -> str:
        return f"554 5.7.1 <{address}>: Relay access denied"


class Waits:
    """A retry policy that records the waits instead of sleeping them."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self.policy = RetryPolicy(attempts=5, sleep=self.seconds.append)


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings(ROOT / "newsletter.toml", environ={"NEWSLETTER_DELIVERY__PROVIDER": "smtp"})


@pytest.fixture(scope="module")
def rendered(settings: Settings) -> RenderedEmail:
    return render_issue(find_issue(settings.issues_dir, SLUG), settings)


@pytest.fixture
def cert(tmp_path: Path) -> tuple[Path, Path]:
    return self_signed(tmp_path)


@pytest.fixture
def waits() -> Waits:
    return Waits()


def provider(port: int, waits: Waits, **kwargs: Any) -> SMTPProvider:
    options: dict[str, Any] = {"security": "none", "sender": SENDER, "policy": waits.policy, "timeout": 5.0,
                               "connections": CONNECTIONS}
    options.update(kwargs)
    return SMTPProvider("127.0.0.1", port, **options)


def deliver(p: SMTPProvider, settings: Settings, rendered: RenderedEmail, people: list[tuple[str, str]]
            ) -> list[Outcome]:
    outcomes: list[Outcome] = []
    batch = [Outgoing(i, recipient_for(settings, e, n, "k")) for i, (e, n) in enumerate(people, 1)]
    try:
        deliver_in_slots(p, Letter(rendered, settings, "k"), batch, outcomes.append)
    finally:
        p.close()
    order = [out.recipient.email for out in batch]
    return sorted(outcomes, key=lambda o: order.index(o.emails[0]))  # the batch's order, whichever slot went first


def people(n: int) -> list[tuple[str, str]]:
    return [(f"reader{i}@example.com", f"Reader {i}") for i in range(n)]


def stops_at_once(p: SMTPProvider, settings: Settings, rendered: RenderedEmail, waits: Waits) -> ProviderError:
    """Deliver to five people, expecting the send to stop before anyone is reported on."""
    outcomes: list[Outcome] = []
    batch = [Outgoing(i, recipient_for(settings, e, n, "k")) for i, (e, n) in enumerate(people(5), 1)]
    try:
        with pytest.raises(ProviderError) as info:
            deliver_in_slots(p, Letter(rendered, settings, "k"), batch, outcomes.append)
    finally:
        p.close()
    assert outcomes == [] and waits.seconds == []
    return info.value


# --- AUTH never in clear, unless the server is this machine --------------------------------------

@pytest.mark.parametrize("host", ["mail.example.com", "10.0.0.25", "192.168.1.1", "2001:db8::25",
                                  "localhost.example.com", "127.0.0.1.nip.io"])
def test_a_login_over_an_unencrypted_connection_is_refused_before_connecting(host: str) -> None:
    with pytest.raises(ProviderError, match="refusing to send the password for 'hailey'") as info:
        SMTPProvider(host, 25, security="none", username="hailey", password=PASSWORD)
    assert PASSWORD not in str(info.value) and "starttls" in (info.value.hint or "")


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST.", "127.0.0.1", "127.3.2.1", "::1", "[::1]",
                                  "::ffff:127.0.0.1"])
def test_the_loopback_server_may_take_a_login_in_clear(host: str) -> None:
    assert is_loopback(host)
    SMTPProvider(host, 25, security="none", username="hailey", password=PASSWORD)


def test_no_login_or_encryption_means_no_refusal() -> None:
    SMTPProvider("mail.example.com", 25, security="none")
    SMTPProvider("mail.example.com", 587, security="starttls", username="hailey", password=PASSWORD)


def test_the_cli_refuses_a_clear_text_login_to_a_remote_server(newsletter_dir: Path, runner: Any,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from newsletter.cli.app import app

    for name, value in {"NEWSLETTER_DELIVERY__PROVIDER": "smtp", "NEWSLETTER_SMTP__HOST": "mail.example.com",
                        "NEWSLETTER_SMTP__SECURITY": "none", "NEWSLETTER_SMTP__USERNAME": "hailey",
                        "SMTP_PASSWORD": PASSWORD}.items():
        monkeypatch.setenv(name, value)
    result = runner.invoke(app, ["send", SLUG, "--yes"])
    assert result.exit_code == 1 and "refusing to send the password for 'hailey'" in result.output
    assert PASSWORD not in result.output and "Traceback" not in result.output
    assert not any((newsletter_dir / "sends").rglob("*"))  # refused before the ledger was touched


# --- TLS: a private CA, and failures that retrying cannot fix ------------------------------------

def test_ca_file_trusts_a_private_ca(tmp_path: Path, cert: tuple[Path, Path], settings: Settings,
                                     rendered: RenderedEmail) -> None:
    server = FakeSMTP(tls=cert).start()
    try:
        local = dataclasses.replace(settings, smtp=dataclasses.replace(
            settings.smtp, host="127.0.0.1", port=server.port, security="starttls", ca_file=str(cert[0])))
        p = SMTPProvider.from_settings(local, "", RetryPolicy(attempts=1))
        assert [o.state for o in deliver(p, local, rendered, people(2))] == [State.SENT, State.SENT]
    finally:
        server.stop()


def test_ssl_cert_file_is_honoured(cert: tuple[Path, Path], settings: Settings, rendered: RenderedEmail,
                                   waits: Waits, monkeypatch: pytest.MonkeyPatch) -> None:
    server = FakeSMTP(tls=cert).start()
    try:
        monkeypatch.setenv("SSL_CERT_FILE", str(cert[0]))
        outcomes = deliver(provider(server.port, waits, security="starttls"), settings, rendered, people(1))
        assert [o.state for o in outcomes] == [State.SENT]
    finally:
        server.stop()


def test_a_certificate_that_cannot_be_verified_stops_at_once(cert: tuple[Path, Path], settings: Settings,
                                                             rendered: RenderedEmail, waits: Waits) -> None:
    server = FakeSMTP(tls=cert).start()
    try:
        error = stops_at_once(provider(server.port, waits, security="starttls"), settings, rendered, waits)
        assert "certificate of the SMTP server" in str(error) and "cannot be verified" in str(error)
        assert "[smtp] ca_file" in (error.hint or "") and "SSL_CERT_FILE" in (error.hint or "")
        assert server.handler.messages == []
    finally:
        server.stop()


def tls_listener(cert: tuple[Path, Path], maximum: ssl.TLSVersion) -> tuple[int, list[int]]:
    """A TLS-from-the-start port that offers at most `maximum` and counts handshakes.

    Not aiosmtpd: asyncio hangs up on a failed handshake without the protocol_version alert
    that OpenSSL servers (Postfix, Exim) send, and the alert is what the client sees in real life.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert[0]), str(cert[1]))
    context.maximum_version = maximum
    listener = socket.create_server(("127.0.0.1", 0))
    handshakes: list[int] = []

    def serve() -> None:
        with listener:
            listener.settimeout(10)
            while True:
                try:
                    conn, _ = listener.accept()
                except OSError:
                    return
                handshakes.append(1)
                with conn, contextlib.suppress(OSError):
                    context.wrap_socket(conn, server_side=True)

    threading.Thread(target=serve, daemon=True).start()
    return int(listener.getsockname()[1]), handshakes


def test_no_tls_version_in_common_stops_at_once(cert: tuple[Path, Path], settings: Settings,
                                                rendered: RenderedEmail, waits: Waits) -> None:
    port, handshakes = tls_listener(cert, ssl.TLSVersion.TLSv1_2)
    context = ssl.create_default_context(cafile=str(cert[0]))
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    error = stops_at_once(provider(port, waits, security="tls", ssl_context=context), settings, rendered, waits)
    assert "TLS with the SMTP server" in str(error) and "PROTOCOL_VERSION" in str(error)
    assert "share no TLS version" in (error.hint or "") and len(handshakes) == CONNECTIONS  # once a slot


def test_tls_to_a_port_that_does_not_speak_it_stops_at_once(smtp_server: FakeSMTP, settings: Settings,
                                                            rendered: RenderedEmail, waits: Waits) -> None:
    error = stops_at_once(provider(smtp_server.port, waits, security="tls"), settings, rendered, waits)
    assert "does not speak TLS on this port" in (error.hint or "")


def test_a_bad_ca_file_is_reported(tmp_path: Path, settings: Settings) -> None:
    bogus = tmp_path / "ca.pem"
    bogus.write_text("not a certificate\n")
    local = dataclasses.replace(settings, smtp=dataclasses.replace(settings.smtp, ca_file=str(bogus)))
    with pytest.raises(ProviderError, match=r"\[smtp\] ca_file: cannot load CA certificates"):
        SMTPProvider.from_settings(local, "", RetryPolicy())


# --- logins: refused once, never echoed ------------------------------------------------------------

def test_a_refused_login_stops_at_once_and_an_echoed_password_is_redacted(
        settings: Settings, rendered: RenderedEmail, waits: Waits) -> None:
    server = FakeSMTP(users={"hailey": PASSWORD}, echo_password=True).start()
    try:
        wrong = "Wrong-Pass-9x!"
        error = stops_at_once(provider(server.port, waits, username="hailey", password=wrong),
                              settings, rendered, waits)
        assert "refused the login for 'hailey'" in str(error) and "535" in str(error)
        assert wrong not in str(error) and "[redacted] is not the password" in str(error)
        assert server.attempts == 2 * CONNECTIONS  # PLAIN, then LOGIN, once a connection: not five rounds
    finally:
        server.stop()


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
@pytest.mark.parametrize("handler", [RecordingHandler, RelayDenied])
def test_a_server_that_wants_a_login_we_lack_stops_at_once(handler: type[RecordingHandler], settings: Settings,
                                                          rendered: RenderedEmail, waits: Waits) -> None:
    """aiosmtpd answers MAIL with 530 5.7.0; Postfix answers every RCPT with Relay access denied."""
    required = handler is RecordingHandler
    server = FakeSMTP(handler(), users={"hailey": PASSWORD}, auth_required=required).start()
    try:
        error = stops_at_once(provider(server.port, waits), settings, rendered, waits)
        assert ("530 5.7.0" if required else "Relay access denied") in str(error)
        assert "the server wants a login: set [smtp] username" in (error.hint or "")
        assert server.handler.messages == []
    finally:
        server.stop()


def test_a_password_echoed_in_a_refusal_is_redacted_from_the_report(
        settings: Settings, rendered: RenderedEmail, waits: Waits) -> None:
    server = FakeSMTP(EchoingHandler(refuse={"reader1@example.com"}), users={"hailey": PASSWORD}).start()
    try:
        p = provider(server.port, waits, username="hailey", password=PASSWORD)
        outcomes = deliver(p, settings, rendered, people(3))
        assert [o.state for o in outcomes] == [State.SENT, State.FAILED, State.SENT]
        detail = outcomes[1].detail
        assert "550 5.7.1" in detail and PASSWORD not in detail
        assert base64.b64encode(f"\0hailey\0{PASSWORD}".encode()).decode() not in detail
        assert detail.count("[redacted]") == 2
    finally:
        server.stop()


def test_the_cli_never_prints_or_stores_an_echoed_password(newsletter_dir: Path, runner: Any,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from newsletter.cli.app import app

    server = FakeSMTP(EchoingHandler(refuse={"marek@example.net"}), users={"hailey": PASSWORD}).start()
    try:
        for name, value in {"NEWSLETTER_DELIVERY__PROVIDER": "smtp", "NEWSLETTER_SMTP__HOST": "127.0.0.1",
                            "NEWSLETTER_SMTP__PORT": str(server.port), "NEWSLETTER_SMTP__SECURITY": "none",
                            "NEWSLETTER_SMTP__USERNAME": "hailey", "SMTP_PASSWORD": PASSWORD}.items():
            monkeypatch.setenv(name, value)
        result = runner.invoke(app, ["send", SLUG, "--yes"])
        assert result.exit_code == 1 and "marek@example.net" in result.output
        assert "[redacted]" in result.output and PASSWORD not in result.output
        stored = [p for p in newsletter_dir.rglob("*") if p.is_file() and PASSWORD.encode() in p.read_bytes()]
        assert stored == []
        status = runner.invoke(app, ["status", SLUG])
        assert PASSWORD not in status.output
    finally:
        server.stop()


def test_redact_masks_every_form_a_secret_comes_back_in() -> None:
    key = 'SG.a/b+c"d\\é'
    forms = [key, base64.b64encode(key.encode()).decode(), 'SG.a/b+c\\"d\\\\\\u00e9', "SG.a%2Fb%2Bc%22d%5C%C3%A9"]
    for form in forms:
        assert redact(f"bad key: {form}.", [key]) == "bad key: [redacted]."
    assert redact("nothing here", ["", "x" * 40]) == "nothing here"


# --- item 3: addresses SMTP can carry, and ones it cannot ------------------------------------------

def test_a_non_ascii_local_part_fails_alone_when_the_server_lacks_smtputf8(
        smtp_server: FakeSMTP, settings: Settings, rendered: RenderedEmail, waits: Waits) -> None:
    outcomes = deliver(provider(smtp_server.port, waits), settings, rendered,
                       [("ana@example.com", "Ana"), ("δοκιμή@example.com", "Δοκιμή"), ("bo@example.com", "Bo")])
    assert [o.state for o in outcomes] == [State.SENT, State.FAILED, State.SENT]
    assert "SMTPUTF8" in outcomes[1].detail
    assert same(smtp_server.handler.delivered_to(), ["ana@example.com", "bo@example.com"])


def test_smtputf8_is_used_when_offered_and_needed(settings: Settings, rendered: RenderedEmail,
                                                  waits: Waits) -> None:
    server = FakeSMTP(smtputf8=True).start()
    try:
        outcomes = deliver(provider(server.port, waits), settings, rendered,
                           [("ana@example.com", "Ana"), ("δοκιμή@example.com", "Δοκιμή")])
        assert [o.state for o in outcomes] == [State.SENT, State.SENT]
        plain, utf8 = sorted(server.handler.messages, key=lambda m: m.rcpt_tos != ["ana@example.com"])
        assert plain.rcpt_tos == ["ana@example.com"] and not plain.smtputf8
        assert utf8.rcpt_tos == ["δοκιμή@example.com"] and utf8.smtputf8
        parsed = message_from_string(utf8.data.decode("utf-8"), policy=policy.default)
        assert parsed["To"].addresses[0].addr_spec == "δοκιμή@example.com"
    finally:
        server.stop()


def test_an_idn_domain_goes_in_the_envelope_as_its_a_label(smtp_server: FakeSMTP, settings: Settings,
                                                           rendered: RenderedEmail, waits: Waits) -> None:
    outcomes = deliver(provider(smtp_server.port, waits), settings, rendered,
                       [("ana@bücher.example", "Ana"), ("bo@xn--bcher-kva.example", "Bo")])
    assert [o.state for o in outcomes] == [State.SENT, State.SENT]
    assert same(smtp_server.handler.delivered_to(), ["ana@xn--bcher-kva.example", "bo@xn--bcher-kva.example"])
    assert not any(m.smtputf8 for m in smtp_server.handler.messages)


@pytest.mark.parametrize(("email", "name"), [("bad\x00@example.com", "Nul"), ("cr\r\nlf@example.com", "Crlf"),
                                             ("ok@example.com", "Name\x00with a NUL")])
def test_a_message_that_cannot_be_built_fails_that_recipient_only(
        smtp_server: FakeSMTP, settings: Settings, rendered: RenderedEmail, waits: Waits,
        email: str, name: str) -> None:
    outcomes = deliver(provider(smtp_server.port, waits), settings, rendered,
                       [("ana@example.com", "Ana"), (email, name), ("bo@example.com", "Bo")])
    assert [o.state for o in outcomes] == [State.SENT, State.FAILED, State.SENT] and outcomes[1].detail
    assert same(smtp_server.handler.delivered_to(), ["ana@example.com", "bo@example.com"])

"""What every Sluice plugin must do, whatever it implements (docs/plugins.md,
"Conventions for every plugin"): answer `describe`, check the magic cookie,
serve gRPC behind go-plugin's AutoMTLS on 127.0.0.1, serve health and
go-plugin's controller, print the protocol line, log hclog JSON on stderr and
exit when the core goes.

This file knows nothing of a policy: `serve` takes the plugin's description
and a function that registers its services.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import json
import os
import signal
import ssl
import sys
import tempfile
from typing import Any, Callable

# grpcio's C core logs to stderr on its own; keep it to errors so the core's
# log shows the plugin's JSON lines only. Set before grpc is imported.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

import grpc  # noqa: E402
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: E402

import go_plugin_pb2  # noqa: E402
import go_plugin_pb2_grpc  # noqa: E402
import health_pb2  # noqa: E402
import health_pb2_grpc  # noqa: E402

# sdk/serve/handshake.go: Handshake and ProtocolVersion.
MAGIC_COOKIE_KEY = "SLUICE_PLUGIN_MAGIC_COOKIE"
MAGIC_COOKIE_VALUE = "d6a3b1c4-sluice-plugin-protocol"
# go-plugin's CoreProtocolVersion, then the Sluice protocol major.
CORE_PROTOCOL_VERSION = 1
PROTOCOL_VERSION = 1
# sdk/serve.MaxMessageSize: the gRPC limit in both directions.
MAX_MESSAGE_SIZE = 64 << 20
# How often the parent process is checked (sdk/serve parentPollInterval).
PARENT_POLL_SECONDS = 1.0
# go-plugin's health check asks for this service (GRPCServiceName).
HEALTH_SERVICE = "plugin"


def log(level: str, message: str, **fields: Any) -> None:
    """Writes one hclog JSON line to stderr. The core parses @level,
    @message and @timestamp (exactly this layout, or the line is not
    recognised) and re-emits the line under the plugin's name; the other
    keys become attributes. Stdout carries only the protocol line."""
    now = datetime.datetime.now(datetime.timezone.utc)
    line = {
        "@level": level,
        "@message": message,
        "@timestamp": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        **fields,
    }
    sys.stderr.write(json.dumps(line) + "\n")
    sys.stderr.flush()


def make_certificate() -> tuple[bytes, bytes, bytes]:
    """Returns a fresh self-signed certificate for "localhost" as
    (certificate PEM, key PEM, certificate DER), shaped like go-plugin's own
    (mtls.go generateCert): the core trusts it as its only root and checks
    the name "localhost", so it is a CA that signs itself and allows server
    and client authentication."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, "localhost"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Sluice Python plugin"),
    ])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(seconds=30))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=True, key_cert_sign=True,
                crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return (
        cert.public_bytes(serialization.Encoding.PEM),
        key_pem,
        cert.public_bytes(serialization.Encoding.DER),
    )


class Health(health_pb2_grpc.HealthServicer):
    """grpc.health.v1.Health: go-plugin pings service "plugin"."""

    async def Check(
        self, request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext
    ) -> health_pb2.HealthCheckResponse:
        if request.service not in ("", HEALTH_SERVICE):
            await context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {request.service!r}")
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)


class Controller(go_plugin_pb2_grpc.GRPCControllerServicer):
    """plugin.GRPCController: go-plugin's client calls Shutdown when the core
    stops the plugin (after Drain). Without it go-plugin waits 2 s and kills."""

    def __init__(self, stop: asyncio.Event) -> None:
        self._stop = stop

    async def Shutdown(
        self, request: go_plugin_pb2.Empty, context: grpc.aio.ServicerContext
    ) -> go_plugin_pb2.Empty:
        log("debug", "shutdown requested by the core")
        self._stop.set()
        return go_plugin_pb2.Empty()


async def _watch_parent(stop: asyncio.Event) -> None:
    """Sets stop once the parent process changes: the core died and this
    process was re-parented. (The core also sets Pdeathsig, but a plugin
    started through a wrapper would not get it.) Stdin is no signal: the core
    gives plugins /dev/null, which reads as closed from the start."""
    parent = os.getppid()
    while not stop.is_set():
        await asyncio.sleep(PARENT_POLL_SECONDS)
        if os.getppid() != parent:
            log("error", "the core process is gone; exiting")
            stop.set()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copies bytes from reader to writer until EOF, then closes writer."""
    try:
        while data := await reader.read(1 << 16):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        writer.close()


async def _start_tls_front(client_pem: str, inner: str, workdir: str) -> tuple[int, str]:
    """Serves go-plugin's AutoMTLS on 127.0.0.1 with Python's ssl module and
    relays each connection, decrypted, to the gRPC server on the unix socket
    inner. Returns the port and the protocol line's certificate field.

    Why not grpcio's own TLS: go-plugin's client certificate is ECDSA P-521,
    and the TLS library inside grpcio (BoringSSL) does not offer the
    ecdsa_secp521r1_sha512 signature scheme, so the core's client would send
    no certificate and the handshake would fail. OpenSSL accepts it."""
    cert_pem, key_pem, cert_der = make_certificate()
    cert_file, key_file = os.path.join(workdir, "cert.pem"), os.path.join(workdir, "key.pem")
    for path, data in ((cert_file, cert_pem), (key_file, key_pem)):
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as f:
            f.write(data)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert_file, key_file)
    # Only a client certificate the core's own certificate vouches for.
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cadata=client_pem)
    # gRPC clients require HTTP/2 negotiated by ALPN.
    ctx.set_alpn_protocols(["h2"])

    async def relay(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            grpc_r, grpc_w = await asyncio.open_unix_connection(inner)
        except OSError as e:
            log("error", "cannot reach the gRPC server", error=str(e))
            client_w.close()
            return
        await asyncio.gather(_pipe(client_r, grpc_w), _pipe(grpc_r, client_w))

    front = await asyncio.start_server(relay, "127.0.0.1", 0, ssl=ctx)
    port = front.sockets[0].getsockname()[1]
    # go-plugin's format: the DER, base64 without padding (RawStdEncoding).
    return port, base64.b64encode(cert_der).decode().rstrip("=")


async def _serve(register: Callable[[grpc.aio.Server], None]) -> None:
    stop = asyncio.Event()
    server = grpc.aio.server(options=[
        ("grpc.max_receive_message_length", MAX_MESSAGE_SIZE),
        ("grpc.max_send_message_length", MAX_MESSAGE_SIZE),
    ])
    health_pb2_grpc.add_HealthServicer_to_server(Health(), server)
    go_plugin_pb2_grpc.add_GRPCControllerServicer_to_server(Controller(stop), server)
    register(server)

    # AutoMTLS: the core passes its certificate (PEM); without it go-plugin
    # speaks plaintext and the certificate field stays empty.
    client_pem = os.environ.get("PLUGIN_CLIENT_CERT", "")
    with tempfile.TemporaryDirectory(prefix="sluice-python-plugin-") as workdir:  # mode 0700
        if client_pem:
            inner = os.path.join(workdir, "grpc.sock")
            server.add_insecure_port(f"unix:{inner}")
            await server.start()
            port, cert_field = await _start_tls_front(client_pem, inner, workdir)
        else:
            port, cert_field = server.add_insecure_port("127.0.0.1:0"), ""
            await server.start()

        # The protocol line, the only thing ever written to stdout.
        line = f"{CORE_PROTOCOL_VERSION}|{PROTOCOL_VERSION}|tcp|127.0.0.1:{port}|grpc|{cert_field}"
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
        log("debug", "plugin serving", address=f"127.0.0.1:{port}", tls=bool(client_pem))

        watcher = asyncio.create_task(_watch_parent(stop))
        await stop.wait()
        watcher.cancel()
        # Let the Shutdown answer (and anything in flight) go out.
        await server.stop(grace=1.0)


def serve(description: dict[str, Any], register: Callable[[grpc.aio.Server], None]) -> None:
    """Runs the plugin: prints description for `describe`, else serves until
    the core stops it or goes away. description has the shape of
    sdk/serve.Description."""
    if sys.argv[1:] == ["describe"]:
        json.dump(description, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    if os.environ.get(MAGIC_COOKIE_KEY) != MAGIC_COOKIE_VALUE:
        sys.stderr.write(
            "This binary is a Sluice plugin: the gateway starts it (put it in its plugin_dir).\n"
            "Run it with the single argument `describe` to see what it provides.\n"
        )
        sys.exit(1)
    # Like go-plugin, ignore Ctrl-C: the core decides when a plugin stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    asyncio.run(_serve(register))

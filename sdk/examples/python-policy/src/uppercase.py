"""The python-uppercase policy: in the publish and subscribe phases it
upper-cases the content of every message and, when `record_key` is set, sets
the attribute gravitee.attribute.kafka.recordKey on each message, which the
Kafka endpoint produces as the record's key.

    policy "python-uppercase" {
      record_key = "from-python"
    }
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, AsyncIterator

import grpc

import plugin_pb2 as pb
import plugin_pb2_grpc as pb_grpc
import sluice_plugin

PLUGIN_NAME = "policy-python-uppercase"  # the binary is sluice-plugin-<PLUGIN_NAME>
TYPE_NAME = "python-uppercase"           # what operators write in policy "..."
VERSION = "0.1.0"
PHASES = ["publish", "subscribe"]
RECORD_KEY_ATTRIBUTE = "gravitee.attribute.kafka.recordKey"

RECORD_KEY_DESCRIPTION = (
    f"When set, every message gets the attribute {RECORD_KEY_ATTRIBUTE} with this value: "
    "the Kafka endpoint produces it as the record key."
)
DESCRIPTION = "Upper-cases message content and optionally sets the Kafka record key (an example plugin in Python)."


def describe() -> dict[str, Any]:
    """The `describe` output, shaped like sdk/serve.Description."""
    return {
        "protocol_version": sluice_plugin.PROTOCOL_VERSION,
        "kind": "policy",
        "name": PLUGIN_NAME,
        "version": VERSION,
        "types": [{
            "name": TYPE_NAME,
            "description": DESCRIPTION,
            "schema": {"attributes": [
                {"name": "record_key", "type": "string", "description": RECORD_KEY_DESCRIPTION},
            ]},
            "phases": PHASES,
        }],
    }


@dataclass(frozen=True)
class Config:
    """One configured policy block."""
    record_key: str | None


def error(summary: str, detail: str = "", path: list[str] | None = None) -> pb.Diagnostic:
    return pb.Diagnostic(severity=pb.Diagnostic.ERROR, summary=summary, detail=detail, attribute_path=path or [])


def decode(type_name: str, config_json: bytes) -> tuple[Config | None, list[pb.Diagnostic]]:
    """Decodes a block's JSON (snake_case attributes). The core has already
    checked it against the declared schema; these checks cover callers that
    skip the core and what the schema cannot say (a non-empty key)."""
    if type_name != TYPE_NAME:
        return None, [error(f"unknown type {type_name!r}", f"{PLUGIN_NAME} provides {TYPE_NAME!r} only")]
    try:
        raw = json.loads(config_json or b"{}") or {}
    except ValueError as e:
        return None, [error("invalid configuration JSON", str(e))]
    if not isinstance(raw, dict):
        return None, [error("the configuration must be a JSON object")]
    diags = [error(f"unsupported attribute {k!r}", path=[k]) for k in sorted(raw) if k != "record_key"]
    key = raw.get("record_key")
    if key is not None and not isinstance(key, str):
        diags.append(error("record_key must be a string", path=["record_key"]))
    elif key == "":
        diags.append(error("record_key must not be empty", "Leave it out to keep the record key.", ["record_key"]))
    return (None if diags else Config(record_key=key)), diags


def upper(content: bytes) -> bytes:
    """Upper-cases UTF-8 text; other bytes keep all but their ASCII letters."""
    try:
        return content.decode("utf-8").upper().encode("utf-8")
    except UnicodeDecodeError:
        return content.upper()


class Policy(pb_grpc.PluginServicer, pb_grpc.PolicyServicer):
    """Serves sluice.plugin.v1.Plugin and sluice.plugin.v1.Policy. One
    process serves every configured block, so state is kept per instance id.
    The core configures the instances again after a plugin restart."""

    def __init__(self) -> None:
        self.instances: dict[str, Config] = {}

    async def GetMetadata(self, request: pb.GetMetadata.Request, context: grpc.aio.ServicerContext) -> pb.GetMetadata.Response:
        # No "tunnel" feature: the core calls Policy.OnRequest and
        # Policy.OnMessages as plain gRPC methods.
        schema = pb.Schema(attributes=[pb.Schema.Attribute(
            name="record_key", type=pb.Schema.Attribute.STRING, description=RECORD_KEY_DESCRIPTION)])
        return pb.GetMetadata.Response(
            kind=pb.POLICY, name=PLUGIN_NAME, version=VERSION,
            types=[pb.TypeInfo(name=TYPE_NAME, description=DESCRIPTION, config_schema=schema, phases=PHASES)],
        )

    async def ValidateConfig(self, request: pb.ValidateConfig.Request, context: grpc.aio.ServicerContext) -> pb.ValidateConfig.Response:
        _, diags = decode(request.type, request.config_json)
        return pb.ValidateConfig.Response(diagnostics=diags)

    async def Configure(self, request: pb.Configure.Request, context: grpc.aio.ServicerContext) -> pb.Configure.Response:
        cfg, diags = decode(request.type, request.config_json)
        if cfg is not None:
            self.instances[request.instance_id] = cfg
        return pb.Configure.Response(diagnostics=diags)

    async def Unconfigure(self, request: pb.Unconfigure.Request, context: grpc.aio.ServicerContext) -> pb.Unconfigure.Response:
        self.instances.pop(request.instance_id, None)
        return pb.Unconfigure.Response()

    async def Drain(self, request: pb.Drain.Request, context: grpc.aio.ServicerContext) -> pb.Drain.Response:
        # Each batch is answered as soon as it is read, so nothing is ever
        # in flight between two reads: there is nothing to finish.
        sluice_plugin.log("info", "drain", deadline_ms=request.deadline_ms)
        return pb.Drain.Response()

    async def OnRequest(self, request: pb.OnRequest.Request, context: grpc.aio.ServicerContext) -> pb.OnRequest.Response:
        # The metadata lists no "request" phase, so the core never calls
        # this; fail loudly rather than do nothing if one does.
        return pb.OnRequest.Response(interrupt=pb.Failure(
            status=500, key="FAILURE_POLICY_PHASE_UNSUPPORTED",
            message=f"{TYPE_NAME} runs in the publish and subscribe phases only"))

    async def OnMessages(
        self, requests: AsyncIterator[pb.OnMessages.Request], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.OnMessages.Response]:
        """One long-lived stream multiplexing the batches of every instance
        and request. Each batch gets exactly one response with its batch_id;
        messages keep their tag (acknowledgements) and error messages pass
        untouched."""
        async for req in requests:
            yield self.on_batch(req)

    def on_batch(self, req: pb.OnMessages.Request) -> pb.OnMessages.Response:
        cfg = self.instances.get(req.instance_id)
        if cfg is None:
            sluice_plugin.log("error", "batch for an instance that is not configured", instance_id=req.instance_id)
            return pb.OnMessages.Response(batch_id=req.batch_id, interrupt=pb.Failure(
                status=500, key="FAILURE_POLICY_INSTANCE_UNKNOWN",
                message=f"{TYPE_NAME}: instance {req.instance_id!r} is not configured"))
        for m in req.messages:
            if m.HasField("error"):
                continue
            m.content = upper(m.content)
            if cfg.record_key is not None:
                m.attributes[RECORD_KEY_ATTRIBUTE].string_value = cfg.record_key
        return pb.OnMessages.Response(batch_id=req.batch_id, messages=req.messages)


def register(server: grpc.aio.Server) -> None:
    policy = Policy()
    pb_grpc.add_PluginServicer_to_server(policy, server)
    pb_grpc.add_PolicyServicer_to_server(policy, server)

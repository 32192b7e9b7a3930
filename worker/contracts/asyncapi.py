"""One AsyncAPI 3.0 document for the whole pipeline: servers, topics, messages, stages.

Payload schemas are the records' JSON Schemas (`worker.contracts.schemas`) under
`components/schemas`; the parts they use are plain JSON Schema that AsyncAPI's default schema format
reads as well.
"""

from __future__ import annotations

from worker.contracts.flow import OPERATIONS, TOPICS, Operation, Topic
from worker.contracts.kinds import JSON
from worker.contracts.schemas import definitions

KAFKA_BINDING = "0.5.0"
INFO = (
    "A marketplace payout pipeline: orders -> payouts -> screening -> approved, or held for a person "
    "-> decisions -> settlement. Every message value is plain JSON (money as decimal strings, times as "
    "ISO-8601 UTC); each topic's schema is also in `<topic>.schema.json` beside this file. Topic names "
    "carry TOPIC_PREFIX in front when it is set. A message a stage cannot process goes to "
    "`dead-letters` with a reason code."
)


def in_components(name: str) -> JSON:
    """A reference to a schema of this document."""
    return {"$ref": f"#/components/schemas/{name}"}


def document(version: str) -> JSON:
    """The AsyncAPI document of the pipeline at `version`."""
    records = tuple(dict.fromkeys(cls for topic in TOPICS for cls in topic.records))
    return {
        "asyncapi": "3.0.0",
        "info": {"title": "streamline", "version": version, "description": INFO},
        "defaultContentType": "application/json",
        "servers": servers(),
        "channels": {topic.name: channel(topic) for topic in TOPICS},
        "operations": {operation_id(op): operation(op) for op in OPERATIONS},
        "components": {
            "schemas": dict(sorted(definitions(records, in_components).items())),
            "securitySchemes": security_schemes(),
        },
    }


def servers() -> JSON:
    """The ways the worker connects (KAFKA_SECURITY_PROTOCOL): SASL_SSL, mTLS, or plain locally."""
    bootstrap = {"bootstrap": {"description": "KAFKA_BOOTSTRAP_SERVERS, one host:port of it"}}
    sasl = ["sasl-plain", "sasl-scram-sha-256", "sasl-scram-sha-512"]
    return {
        "sasl-ssl": {
            "host": "{bootstrap}",
            "protocol": "kafka-secure",
            "description": "KAFKA_SECURITY_PROTOCOL=SASL_SSL with KAFKA_SASL_MECHANISMS (Confluent Cloud).",
            "variables": bootstrap,
            "security": [{"$ref": f"#/components/securitySchemes/{name}"} for name in sasl],
        },
        "mtls": {
            "host": "{bootstrap}",
            "protocol": "kafka-secure",
            "description": "KAFKA_SECURITY_PROTOCOL=SSL with a client certificate (mutual TLS).",
            "variables": bootstrap,
            "security": [{"$ref": "#/components/securitySchemes/mtls"}],
        },
        "embedded": {
            "host": "127.0.0.1:9092",
            "protocol": "kafka",
            "description": "The embedded broker of `make run` (EMBEDDED_BROKER_PORT): no security.",
        },
    }


def security_schemes() -> JSON:
    """SASL over TLS (PLAIN or SCRAM) and TLS client certificates."""
    user = "KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"
    return {
        "sasl-plain": {"type": "plain", "description": f"KAFKA_SASL_MECHANISMS=PLAIN; {user}."},
        "sasl-scram-sha-256": {"type": "scramSha256", "description": f"SCRAM-SHA-256; {user}."},
        "sasl-scram-sha-512": {"type": "scramSha512", "description": f"SCRAM-SHA-512; {user}."},
        "mtls": {
            "type": "X509",
            "description": "Mutual TLS: KAFKA_SSL_CERTFILE and KAFKA_SSL_KEYFILE, KAFKA_SSL_CAFILE.",
        },
    }


def channel(topic: Topic) -> JSON:
    """A topic, its messages (one per record kind) and their key."""
    return {
        "address": topic.name,
        "description": topic.summary,
        "messages": {cls.__name__: message(cls.__name__, topic) for cls in topic.records},
    }


def message(name: str, topic: Topic) -> JSON:
    key = {"type": "string", "description": topic.key}
    return {
        "name": name,
        "title": name,
        "contentType": "application/json",
        "payload": in_components(name),
        "bindings": {"kafka": {"key": key, "bindingVersion": KAFKA_BINDING}},
    }


def operation_id(op: Operation) -> str:
    return f"{op.stage}.{op.action}.{op.topic}"


def operation(op: Operation) -> JSON:
    """Which stage sends or receives on a topic (receiving stages consume in the APP_ID group)."""
    topic = next(t for t in TOPICS if t.name == op.topic)
    refs = [{"$ref": f"#/channels/{op.topic}/messages/{cls.__name__}"} for cls in topic.records]
    return {
        "action": op.action,
        "channel": {"$ref": f"#/channels/{op.topic}"},
        "title": op.stage,
        "summary": op.summary,
        "messages": refs,
    }

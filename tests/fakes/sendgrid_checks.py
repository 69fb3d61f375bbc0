"""What the SendGrid-speaking test server checks in a /v3/mail/send body.

SendGrid's own OpenAPI schema (tests/fixtures/sendgrid/tsg_mail_v3.json, MIT, provenance in the README
beside it, with its documented custom_args fix) and the limits the schema does not encode (that README).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SPEC_DIR = REPO / "tests" / "fixtures" / "sendgrid"
MAIL_SCHEMA = "#/components/requestBodies/PostMailSend/content/application~1json/schema"


def mail_send_schema() -> dict[str, Any]:
    """SendGrid's OpenAPI document, rooted at the mail-send body schema, custom_args fixed."""
    spec = json.loads((SPEC_DIR / "tsg_mail_v3.json").read_text(encoding="utf-8"))
    schema = spec["components"]["requestBodies"]["PostMailSend"]["content"]["application/json"]["schema"]
    # Known defect (README): custom_args is typed string; the API takes an object of strings.
    schema["properties"]["custom_args"] = {"type": "object", "additionalProperties": {"type": "string"}}
    root = copy.copy(spec)
    root["$ref"] = MAIL_SCHEMA
    return root


@lru_cache(maxsize=1)
def reference_validator() -> Any:
    """The reference (jsonschema, draft 2020-12, formats checked) validator: exact but slow."""
    from jsonschema import Draft202012Validator, FormatChecker

    return Draft202012Validator(mail_send_schema(), format_checker=FormatChecker())


@lru_cache(maxsize=1)
def fast_validator() -> Callable[[Any], Any]:
    """The same schema compiled by fastjsonschema: ~50x faster, so the server keeps up with a
    1000-recipient request every few milliseconds (the tests check both agree on our bodies)."""
    import fastjsonschema

    return fastjsonschema.compile({**mail_send_schema(), "$schema": "http://json-schema.org/draft-07/schema#"})


def limit_errors(body: dict[str, Any], now: float) -> list[dict[str, Any]]:
    """The README's limits that the schema does not encode, as SendGrid-style errors."""
    errors: list[dict[str, Any]] = []

    def err(field: str | None, message: str) -> None:
        errors.append({"message": message, "field": field, "help": None})

    seen: set[str] = set()
    total = 0
    for i, p in enumerate(body.get("personalizations", [])):
        for kind in ("to", "cc", "bcc"):
            for j, r in enumerate(p.get(kind, [])):
                total += 1
                address = str(r.get("email", "")).lower()
                if address in seen:
                    err(f"personalizations.{i}.{kind}.{j}.email", "Each email address in the personalization "
                        "block should be unique between to, cc, and bcc.")
                seen.add(address)
                if any(c in r.get("name", "") for c in ";,"):
                    err(f"personalizations.{i}.{kind}.{j}.name", "The name may not contain ';' or ','.")
        subs = p.get("substitutions", {})
        if sum(map(len, subs)) + sum(map(len, subs.values())) >= 2_500 and \
                sum(len(k.encode()) + len(v.encode()) for k, v in subs.items()) >= 10_000:
            err(f"personalizations.{i}.substitutions", "The substitutions must be under 10,000 bytes.")
        if "custom_args" in p and len(json.dumps(p["custom_args"]).encode()) >= 10_000:
            err(f"personalizations.{i}.custom_args", "custom_args must be under 10,000 bytes.")
    if total > 1000:
        err("personalizations", "At most 1000 recipients (to, cc and bcc) per request.")
    if len(json.dumps(body.get("custom_args", {})).encode()) >= 10_000:
        err("custom_args", "custom_args must be under 10,000 bytes.")
    if len(body.get("categories", [])) > 10:
        err("categories", "At most 10 categories.")
    content = body.get("content", [])
    types = [c.get("type") for c in content]
    if "text/plain" in types and "text/html" in types and types.index("text/plain") > types.index("text/html"):
        err("content", "If present, text/plain content must be first, followed by text/html.")
    for k, c in enumerate(content):
        if not c.get("value"):
            err(f"content.{k}.value", "The content value must be a string at least one character in length.")
    send_at = body.get("send_at")
    if isinstance(send_at, int) and send_at > now + 72 * 3600:
        err("send_at", "The send_at parameter cannot be more than 72 hours in the future.")
    return errors


def schema_errors(body: Any, *, reference: bool = False) -> list[dict[str, Any]]:
    """Schema violations, each named by its JSON path in SendGrid's dotted style."""
    if reference:
        return [{"message": e.message[:300], "field": ".".join(str(p) for p in e.absolute_path) or None,
                 "help": None} for e in sorted(reference_validator().iter_errors(body), key=lambda e: list(e.path))]
    import fastjsonschema

    try:
        fast_validator()(body)
    except fastjsonschema.JsonSchemaValueException as e:
        return [{"message": e.message[:300], "field": ".".join(str(p) for p in e.path[1:]) or None, "help": None}]
    return []

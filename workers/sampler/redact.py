"""Hides secrets in process command lines before they leave the node.

Command lines reach Redis, the database and every browser that shows a node, and people put
secrets on them (``curl -H "Authorization: Bearer pm_..."``, ``--password=...``, database URLs
with ``user:pass@``). The values are replaced by ``***``; the names stay, so a reader still sees
what the process is. Erring towards hiding: a harmless value after a flag named like a secret
(``--token-budget 100``) is hidden too.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

MASK = "***"

# Words that make an option or variable name a secret's name, once the name is split at -, _ and .
_SECRET_WORDS = frozenset(
    {
        "pass",
        "passwd",
        "password",
        "passphrase",
        "pwd",
        "secret",
        "token",
        "apikey",
        "key",
        "auth",
        "credential",
        "credentials",
        "cookie",
        "signature",
    }
)
# HTTP headers that carry credentials, as curl -H / wget --header / httpie write them.
_SECRET_HEADER = re.compile(
    r"^(?P<name>(?:proxy-)?authorization|cookie|set-cookie|x-api-key|api-key|x-auth-token|private-token)"
    r"(?P<sep>\s*[:=]\s*)(?P<value>.*)$",
    re.IGNORECASE | re.DOTALL,
)
_AUTH_SCHEME = re.compile(r"^(?:bearer|basic|token|digest|negotiate)$", re.IGNORECASE)
_SCHEME_AND_VALUE = re.compile(r"\b(?P<scheme>bearer|basic)\s+\S+", re.IGNORECASE)
# name=value or "name": "value" inside a longer argument: a DSN ("host=db password=x"), a query
# string ("?access_token=x&"), JSON ('{"api_key": "x"}').
_INLINE_SECRET = re.compile(
    r"(?P<name>\b[\w.-]*(?:password|passwd|passphrase|secret|token|api[_-]?key|apikey|access[_-]?key)"
    r"[\"']?)(?P<sep>\s*[:=]\s*[\"']?)(?P<value>[^\s\"'&,;}]+)",
    re.IGNORECASE,
)
# user:password@ in any URL (postgres://, redis://, https://, ...).
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^/\s:@]*:)[^@\s/]*@", re.IGNORECASE)
# Tokens recognisable by their shape wherever they appear: perfmon's own, GitHub's, Slack's,
# OpenAI-style keys, AWS access key ids and JWTs.
_TOKEN_SHAPES = re.compile(
    r"\b(?:pm_[A-Za-z0-9_-]{8,}"
    r"|gh[pousr]_[A-Za-z0-9]{20,}"
    r"|xox[abposr]-[A-Za-z0-9-]{10,}"
    r"|sk-[A-Za-z0-9_-]{20,}"
    r"|AKIA[A-Z0-9]{16}"
    r"|eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*)"
)
_INLINE_HEADER = re.compile(
    r"\b(?P<name>(?:proxy-)?authorization|x-api-key|x-auth-token|private-token|cookie)(?P<sep>\s*:\s*)"
    r"(?P<scheme>(?:bearer|basic|token|digest)\s+)?(?P<value>[^\s\"']+)",
    re.IGNORECASE,
)
# Short options that carry a password in programs people run on GPU nodes: mysql -pSECRET
# (attached), redis-cli -a SECRET (next argument).
_ATTACHED_PASSWORD = {"mysql": "-p", "mysqldump": "-p", "mysqladmin": "-p"}
_NEXT_IS_PASSWORD = {"redis-cli": "-a", "sshpass": "-p"}
_NAME_VALUE = re.compile(r"^(?P<name>-{0,2}[A-Za-z][A-Za-z0-9_.-]*)=(?P<value>.*)$", re.DOTALL)


def _is_secret_name(name: str) -> bool:
    words = re.split(r"[-_.]+", name.strip("-").lower())
    return any(word in _SECRET_WORDS for word in words)


def _redact_shapes(text: str) -> str:
    text = _URL_PASSWORD.sub(lambda m: m["head"] + MASK + "@", text)
    text = _INLINE_HEADER.sub(lambda m: m["name"] + m["sep"] + (m["scheme"] or "") + MASK, text)
    text = _INLINE_SECRET.sub(lambda m: m["name"] + m["sep"] + MASK, text)
    text = _SCHEME_AND_VALUE.sub(lambda m: f"{m['scheme']} {MASK}", text)
    return _TOKEN_SHAPES.sub(lambda m: m[0][:3] + MASK if m[0].startswith("pm_") else MASK, text)


def redact_argv(argv: Sequence[str]) -> list[str]:
    """``argv`` with the values of secret-looking arguments replaced by ``***``.

    Hidden: ``--password=x`` / ``--password x`` / ``DB_PASSWORD=x`` (any option or variable
    whose name holds a word like password, token, secret, key, auth), header values
    (``Authorization: Bearer x``, also split over several arguments), ``Bearer x``, the password
    in ``scheme://user:password@host``, and tokens known by their shape (``pm_...``, ``ghp_...``,
    ``sk-...``, ``AKIA...``, JWTs) anywhere."""
    out: list[str] = []
    # What the previous argument says about this one: None, "value" (after --password),
    # "header" (after a bare "Authorization:": a scheme may come first) or "token" (after "Bearer").
    pending: str | None = None
    program = argv[0].rsplit("/", 1)[-1] if argv else ""
    attached, next_is = _ATTACHED_PASSWORD.get(program), _NEXT_IS_PASSWORD.get(program)
    for arg in argv:
        expecting, pending = pending, None
        if expecting == "header" and _AUTH_SCHEME.match(arg):
            out.append(arg)
            pending = "token"
            continue
        if expecting in ("header", "token") or (expecting == "value" and not arg.startswith("--")):
            out.append(MASK)
            continue
        header = _SECRET_HEADER.match(arg)
        if header:
            value = header["value"]
            if not value.strip():
                pending = "header"  # the value is in the next argument(s)
                out.append(arg)
                continue
            scheme, _, rest = value.partition(" ")
            shown = f"{scheme} {MASK}" if rest and _AUTH_SCHEME.match(scheme) else MASK
            out.append(f"{header['name']}{header['sep']}{shown}")
            continue
        pair = _NAME_VALUE.match(arg)
        if pair and _is_secret_name(pair["name"]):
            out.append(f"{pair['name']}={MASK}")
            continue
        if attached and arg.startswith(attached) and len(arg) > len(attached):
            out.append(attached + MASK)
            continue
        if arg == next_is:
            pending = "token"
        elif arg.startswith("-") and len(arg) > 2 and "=" not in arg and _is_secret_name(arg):
            pending = "value"  # --password <value>
        elif arg.lower() in ("bearer", "basic"):
            pending = "token"  # "Bearer" "<token>"
        out.append(_redact_shapes(arg))
    return out


def redact_command_line(command: str) -> str:
    """A joined command line (as stored and shown) with its secrets hidden, as ``redact_argv``.

    For text whose argument boundaries are lost: it is split at spaces, so a header written as
    one argument is handled as if split."""
    return " ".join(redact_argv(command.split(" ")))

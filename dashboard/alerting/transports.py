"""One transport per channel kind (the healthchecks TRANSPORTS table): how a channel's config is
checked, how a notification is rendered for it, and how it is sent.

A transport never raises out of ``send``: it maps its outside system's failures to an ``Outcome``
saying whether trying again could help (timeouts, connection errors, 5xx) or not (4xx, a refused
recipient). The rendered payload is stored on the Delivery row, so every attempt of one
notification sends the same bytes under the same idempotency key."""

from __future__ import annotations

import smtplib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email

from dashboard import live
from dashboard.models import Channel

# Alertmanager's zero time: what it sends as endsAt for an alert that has not ended.
ZERO_TIME = "0001-01-01T00:00:00Z"
ERROR_CHARS = 500
WEBHOOK_FORMATS = ("alertmanager", "slack")
MAX_RECIPIENTS = 50
# The channel-layer topic every open page subscribes to (see dashboard/live.py).
ALERTS_TOPIC = "alerts"


class InvalidChannel(ValueError):
    """A channel definition we refuse; the message names the field and the reason (API: 400)."""


@dataclass(frozen=True)
class Notice:
    """What one notification says: an alert (or a test) in one state, with its value then."""

    rule: str
    state: str  # firing | resolved | nodata | error | test
    value: float | None
    labels: dict[str, str]
    annotations: dict[str, str]
    fingerprint: str
    starts_at: datetime | None
    ends_at: datetime | None
    url: str
    severity: str
    alert_id: int | None = None
    repeat: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def am_status(self) -> str:
        """Alertmanager knows only firing and resolved: no data and errors are firing alerts."""
        return "resolved" if self.state == "resolved" else "firing"

    def headline(self) -> str:
        value = "no value" if self.value is None else f"value {_number(self.value)}"
        again = f" (reminder {self.repeat})" if self.repeat else ""
        return f"[{self.state.upper()}] {self.rule}: {value}{again}"


@dataclass(frozen=True)
class Outcome:
    ok: bool
    retry: bool = False  # worth trying again later
    response_code: int | None = None
    error: str = ""


class Transport:
    kind: str = ""

    def parse_config(self, raw: dict[str, Any]) -> dict[str, Any]:
        """The stored config from what a user sent; raises InvalidChannel."""
        return {}

    def render(self, channel: Channel, notice: Notice) -> dict[str, Any]:
        raise NotImplementedError

    def send(self, channel: Channel, payload: dict[str, Any], idempotency_key: str) -> Outcome:
        raise NotImplementedError

    def describe(self, config: dict[str, Any]) -> str:
        return ""


class Webhook(Transport):
    """A JSON POST: Alertmanager's webhook payload (version "4"), so existing receivers work
    unchanged, or Slack's {"text": ...}. The idempotency key goes in the Idempotency-Key header."""

    kind = "webhook"

    def parse_config(self, raw: dict[str, Any]) -> dict[str, Any]:
        url = raw.get("url")
        if not isinstance(url, str) or not url.strip():
            raise InvalidChannel("url: a webhook needs the URL to POST to")
        url = url.strip()
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise InvalidChannel(f"url: the scheme must be http or https, not {parts.scheme or 'none'!r}")
        if not parts.hostname:
            raise InvalidChannel("url: no host in the URL")
        try:
            parts.port  # noqa: B018  (raises on a port out of range)
        except ValueError as exc:
            raise InvalidChannel(f"url: {exc}") from None
        fmt = raw.get("format") or "alertmanager"
        if fmt not in WEBHOOK_FORMATS:
            raise InvalidChannel(f"format: {fmt!r} is not one of {', '.join(WEBHOOK_FORMATS)}")
        return {"url": url, "format": fmt}

    def render(self, channel: Channel, notice: Notice) -> dict[str, Any]:
        if channel.config.get("format") == "slack":
            return {"text": f"{notice.headline()}\n{_details(notice)}\n<{notice.url}|open in perfmon>"}
        return alertmanager_payload(channel.name, notice)

    def send(self, channel: Channel, payload: dict[str, Any], idempotency_key: str) -> Outcome:
        headers = {"Idempotency-Key": idempotency_key, "User-Agent": "perfmon"}
        try:
            response = requests.post(
                channel.config["url"],
                json=payload,
                headers=headers,
                timeout=settings.NOTIFY_TIMEOUT_S,
                allow_redirects=False,
            )
        except requests.Timeout:
            return Outcome(False, retry=True, error=f"timed out after {settings.NOTIFY_TIMEOUT_S:g} s")
        except requests.ConnectionError as exc:
            return Outcome(False, retry=True, error=f"could not connect: {_reason(exc)}")
        except requests.RequestException as exc:
            return Outcome(False, retry=False, error=f"{type(exc).__name__}: {exc}"[:ERROR_CHARS])
        code = response.status_code
        if 200 <= code < 300:
            return Outcome(True, response_code=code)
        body = response.text[:200].strip()
        if 300 <= code < 400:
            where = response.headers.get("Location", "?")
            return Outcome(
                False, response_code=code, error=f"HTTP {code}: redirected to {where}; give the final URL"
            )
        return Outcome(
            False,
            retry=code >= 500,  # 4xx: the receiver refused this request, sending it again will not help
            response_code=code,
            error=f"HTTP {code}" + (f": {body}" if body else ""),
        )

    def describe(self, config: dict[str, Any]) -> str:
        return f"{config.get('format', 'alertmanager')} → {config.get('url', '')}"


class Email(Transport):
    """Django's email backend (settings.EMAIL_BACKEND; a file per message in the data dir by default)."""

    kind = "email"

    def parse_config(self, raw: dict[str, Any]) -> dict[str, Any]:
        to = raw.get("to")
        if isinstance(to, str):
            to = [to]
        if not isinstance(to, list) or not to:
            raise InvalidChannel("to: an email channel needs at least one recipient")
        if len(to) > MAX_RECIPIENTS:
            raise InvalidChannel(f"to: at most {MAX_RECIPIENTS} recipients")
        addresses = []
        for address in to:
            if not isinstance(address, str):
                raise InvalidChannel(f"to: {address!r} is not an email address")
            try:
                validate_email(address.strip())
            except ValidationError:
                raise InvalidChannel(f"to: {address!r} is not an email address") from None
            addresses.append(address.strip())
        return {"to": addresses}

    def render(self, channel: Channel, notice: Notice) -> dict[str, Any]:
        subject = f"[perfmon] {notice.headline()[1:].replace('] ', ': ', 1)}"
        body = f"{notice.headline()}\n\n{_details(notice)}\n\n{notice.url}\n"
        return {"to": list(channel.config.get("to", [])), "subject": subject, "body": body}

    def send(self, channel: Channel, payload: dict[str, Any], idempotency_key: str) -> Outcome:
        try:
            send_mail(
                payload["subject"],
                payload["body"] + f"\nIdempotency-Key: {idempotency_key}\n",
                settings.DEFAULT_FROM_EMAIL,
                payload["to"],
            )
        except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused) as exc:
            return Outcome(False, retry=False, error=f"refused: {exc}"[:ERROR_CHARS])
        except smtplib.SMTPResponseException as exc:
            return Outcome(
                False, retry=exc.smtp_code < 500, error=f"SMTP {exc.smtp_code}: {exc.smtp_error!r}"
            )
        except (smtplib.SMTPException, OSError) as exc:  # TimeoutError is an OSError
            return Outcome(False, retry=True, error=f"{type(exc).__name__}: {exc}"[:ERROR_CHARS])
        return Outcome(True)

    def describe(self, config: dict[str, Any]) -> str:
        return ", ".join(config.get("to", []))


class Browser(Transport):
    """A toast on every open page: a push to the "alerts" topic every page subscribes to."""

    kind = "browser"

    def render(self, channel: Channel, notice: Notice) -> dict[str, Any]:
        return {
            "type": "alert",
            "alert": {
                "id": notice.alert_id,
                "rule": notice.rule,
                "state": notice.state,
                "value": notice.value,
                "severity": notice.severity,
                "labels": notice.labels,
                "summary": notice.annotations.get("summary", ""),
                "url": notice.url,
                "repeat": notice.repeat,
            },
        }

    def send(self, channel: Channel, payload: dict[str, Any], idempotency_key: str) -> Outcome:
        if live.push(ALERTS_TOPIC, {**payload, "key": idempotency_key}):
            return Outcome(True)
        return Outcome(False, retry=True, error="the live channel (Redis) did not answer")

    def describe(self, config: dict[str, Any]) -> str:
        return "a toast on every open page"


TRANSPORTS: dict[str, Transport] = {t.kind: t for t in (Webhook(), Email(), Browser())}


def transport_for(kind: str) -> Transport:
    try:
        return TRANSPORTS[kind]
    except KeyError:
        raise InvalidChannel(f"kind: {kind!r} is not one of {', '.join(TRANSPORTS)}") from None


def alertmanager_payload(receiver: str, notice: Notice) -> dict[str, Any]:
    """Alertmanager's webhook body, version "4" (prometheus/alertmanager docs/configuration.md),
    with one alert: perfmon notifies per alert episode, so the group is the alert itself."""
    alert = {
        "status": notice.am_status,
        "labels": notice.labels,
        "annotations": notice.annotations,
        "startsAt": _iso(notice.starts_at),
        "endsAt": _iso(notice.ends_at) if notice.ends_at else ZERO_TIME,
        "generatorURL": notice.url,
        "fingerprint": notice.fingerprint,
    }
    group_labels = {"alertname": notice.labels.get("alertname", notice.rule)}
    return {
        "version": "4",
        "groupKey": "{}:{alertname=" + _quoted(group_labels["alertname"]) + "}",
        "truncatedAlerts": 0,
        "status": notice.am_status,
        "receiver": receiver,
        "groupLabels": group_labels,
        "commonLabels": notice.labels,
        "commonAnnotations": notice.annotations,
        "externalURL": settings.PERFMON_EXTERNAL_URL,
        "alerts": [alert],
    }


def _details(notice: Notice) -> str:
    lines = [f"{key}: {value}" for key, value in notice.annotations.items() if key != "summary"]
    lines.append("labels: " + ", ".join(f"{k}={v}" for k, v in notice.labels.items()))
    if notice.starts_at:
        lines.append(f"since: {_iso(notice.starts_at)}")
    if notice.ends_at:
        lines.append(f"ended: {_iso(notice.ends_at)}")
    return "\n".join(lines)


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.isoformat().replace("+00:00", "Z")


def _number(value: float) -> str:
    return f"{value:.4g}"


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _reason(exc: requests.ConnectionError) -> str:
    text = str(exc)
    # urllib3 wraps the OS error: "... (Caused by NewConnectionError(...: [Errno 111] Connection refused'))"
    if "] " in text:
        text = text.rsplit("] ", 1)[1].rstrip("')\"")
    return text[:ERROR_CHARS] or type(exc).__name__

"""Faults that the simulator can inject, one per request, to test how the pipeline copes."""

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Fault:
    """One misbehaviour of the simulated API, applied to the next request it receives.

    The fields combine in this order: wait `stall_seconds`, then either reset the
    connection, send an error with `status`, send `body` in place of the document, or change the
    document with `mutate` before sending it.
    """

    status: int | None = None
    retry_after: str | None = None
    body: str | None = None
    mutate: Callable[[dict[str, Any]], None] | None = None
    stall_seconds: float = 0.0
    reset: bool = False

    def error_document(self) -> dict[str, Any]:
        return {"message": f"Simulated fault: HTTP {self.status}."}


class InvalidFaultError(ValueError):
    """A fault description on the command line that cannot be parsed."""


FAULT_FORMAT = (
    "use 'status=CODE[,retry_after=SECONDS]', 'reset', 'stall=SECONDS' or 'body=TEXT', "
    "e.g. 'status=429,retry_after=2'"
)


def parse_fault(description: str) -> Fault:
    """Parse a command-line fault such as `status=503` or `reset` into a Fault."""
    if description == "reset":
        return Fault(reset=True)
    if description.startswith("body="):
        return Fault(body=description.removeprefix("body="))

    settings: dict[str, str] = {}
    for part in description.split(","):
        name, separator, value = part.partition("=")
        if not separator or name not in ("status", "retry_after", "stall"):
            raise InvalidFaultError(f"invalid fault {description!r}: {FAULT_FORMAT}")
        settings[name] = value
    try:
        return Fault(
            status=int(settings["status"]) if "status" in settings else None,
            retry_after=settings.get("retry_after"),
            stall_seconds=float(settings.get("stall", 0)),
        )
    except ValueError:
        raise InvalidFaultError(f"invalid fault {description!r}: {FAULT_FORMAT}") from None


def truncated(document: dict[str, Any]) -> str:
    """Return the document's JSON cut off half way, as a dropped connection leaves it."""
    text = json.dumps(document)
    return text[: len(text) // 2]

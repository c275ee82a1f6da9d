"""The `time` value that each week is requested with.

The free request, `time=7-days`, returns the seven days before the moment it is made, so it is
a faithful picture of a week only when it is made shortly after that week ends. Any other week
needs the explicit range `time=YYYY-MM-DD,YYYY-MM-DD`, which costs credits.
"""

from datetime import UTC, datetime, timedelta

from streams_t100.partitions import Week

FREE_TIME_VALUE = "7-days"
ALLOW_PAID_ENV_VAR = "STREAMS_CHARTS_ALLOW_PAID"


class RequestWindowError(RuntimeError):
    """A week that cannot be requested at this moment with the current settings."""


def explicit_range(week: Week) -> str:
    return f"{week.start.isoformat()},{week.end.isoformat()}"


def time_value_for_week(
    week: Week, now: datetime, tolerance: timedelta, allow_paid_requests: bool
) -> str:
    """Return the `time` parameter to request `week` with at `now`.

    Raises RequestWindowError for a week that has not ended yet, and for a week outside the
    free window while paid requests are switched off.
    """
    now = now.astimezone(UTC)
    if now < week.ends_at:
        raise RequestWindowError(
            f"week {week.key} ({week}) has not ended yet: it ends at "
            f"{week.ends_at:%Y-%m-%d %H:%M} UTC, and a partial week would be stored as if it "
            "were complete. Materialize it after it ends."
        )

    free_window_closes_at = week.ends_at + tolerance
    if now < free_window_closes_at:
        return FREE_TIME_VALUE

    if not allow_paid_requests:
        raise RequestWindowError(
            f"week {week.key} ({week}) needs a paid request: the free time={FREE_TIME_VALUE} "
            f"request covers the seven days before the call, so it matches this week only "
            f"until {free_window_closes_at:%Y-%m-%d %H:%M} UTC, and it is now "
            f"{now:%Y-%m-%d %H:%M} UTC. To request the explicit range "
            f"time={explicit_range(week)} (it costs credits), set {ALLOW_PAID_ENV_VAR}=true "
            "or the streams_charts resource's allow_paid_requests: true in the run config."
        )
    return explicit_range(week)

"""streams_t100: the weekly top 100 Twitch channels by hours watched, as a Dagster asset graph."""

import warnings

import dagster as dg

# Two beta parameters are relied on deliberately: single-run backfill policies, and a partition
# mapping that tolerates the week before the first partition. Without this filter, every
# command that loads the definitions prints a warning for each asset.
warnings.filterwarnings(
    "ignore",
    message=r"Parameter `(backfill_policy|allow_nonexistent_upstream_partitions)`",
    category=dg.BetaWarning,
)

"""streams_t100: the weekly top 100 Twitch channels by hours watched, as a Dagster asset graph."""

import warnings

import dagster as dg

# The two beta parameters used here (single-run backfill policies, and a partition mapping
# that tolerates the week before the first partition) are relied on deliberately; without
# this filter every command that loads the definitions prints a warning for each asset.
warnings.filterwarnings(
    "ignore",
    message=r"Parameter `(backfill_policy|allow_nonexistent_upstream_partitions)`",
    category=dg.BetaWarning,
)

"""The weekly schedule: every Monday at 08:00 UTC, the week that ended the night before."""

import dagster as dg

weekly_top100_job = dg.define_asset_job(
    "weekly_top100_job",
    selection=dg.AssetSelection.all(),
    description="Fetch a week's top channels and rebuild every table that depends on them.",
)

# A schedule built from a partitioned job requests the partition that ended most recently, so
# the Monday 08:00 tick requests the week that ended eight hours earlier.
weekly_top100_schedule = dg.build_schedule_from_partitioned_job(
    weekly_top100_job, hour_of_day=8, minute_of_hour=0
)

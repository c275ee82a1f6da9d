"""Small text renderings of frames, for asset metadata and the command line."""

import polars as pl


def markdown_table(frame: pl.DataFrame) -> str:
    """Render a small frame as a Markdown table, with thousands separators in integers."""
    header = "| " + " | ".join(frame.columns) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    rows = ["| " + " | ".join(format_cell(value) for value in row) + " |" for row in frame.rows()]
    return "\n".join([header, rule, *rows])


def format_cell(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return "" if value is None else str(value)

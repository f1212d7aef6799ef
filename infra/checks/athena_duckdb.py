"""Runs one of template.yaml's Athena (Trino) named queries over a polytape data directory with
DuckDB, the tables as Athena sees them: each Parquet table a view over its files with the Hive
partitions typed as the Glue tables declare them (tier SMALLINT, dt VARCHAR), the compacted
tables by the reading rule (docs/data.md's macro, as the stack's Athena views). The few Trino
functions DuckDB spells differently are defined as DuckDB macros (sequence), the session is UTC,
and `current_timestamp` is the given instant (the query's "now"). Prints the rows as JSON (one
object per row, times as ISO 8601 strings). Used by crates/collector/tests/coverage_ledger.rs.

Usage: python athena_duckdb.py DATA_DIR QUERY.sql NOW_ISO8601
"""
import json
import os
import sys

import duckdb

TABLES = ["snapshots", "orderbooks", "markets", "resolutions", "tier_transitions", "trades",
          "whale_events", "raw_ws", "signals", "fills", "positions"]
TIERED = {"snapshots", "orderbooks"}
COMPACTED = {"snapshots", "orderbooks", "trades", "whale_events", "raw_ws", "signals", "fills",
             "positions"}
# docs/data.md's DuckDB macro of the reading rule.
READING_RULE = """
CREATE MACRO polytape_read(files, types) AS TABLE
  SELECT * EXCLUDE (filename, hour_compacted) FROM (
    SELECT *, bool_or(filename LIKE '%.compacted.parquet') OVER (
        PARTITION BY dt, regexp_extract(filename, '^(.*/[0-9]{8}T[0-9]{2})[^/]*$', 1)
      ) AS hour_compacted
    FROM read_parquet(files, hive_partitioning = true, filename = true, hive_types = types))
  WHERE filename LIKE '%.compacted.parquet' OR NOT hour_compacted
"""


def main() -> int:
    root, sql_path, now = sys.argv[1:4]
    sql = open(sql_path).read()
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    # Trino's sequence(start, stop, step) over timestamps is DuckDB's generate_series.
    con.execute("CREATE MACRO sequence(a, b, s) AS generate_series(a, b, s)")
    # The compacted tables as Athena's views over <table>_files: by the reading rule of
    # docs/data.md (an hour with a compacted file is read from that file only).
    con.execute(READING_RULE)
    for table in TABLES:
        if not os.path.isdir(os.path.join(root, table)):
            continue
        types = "{'tier': 'SMALLINT', 'dt': 'VARCHAR'}" if table in TIERED else "{'dt': 'VARCHAR'}"
        files = f"{root}/{table}/*/*/*.parquet" if table in TIERED else f"{root}/{table}/*/*.parquet"
        if table in COMPACTED:
            con.execute(f"CREATE VIEW {table} AS FROM polytape_read('{files}', {types})")
        else:
            con.execute(
                f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{files}', "
                f"hive_partitioning = true, hive_types = {types})"
            )
    if sql.count("current_timestamp") < 1:
        print("the query does not use current_timestamp", file=sys.stderr)
        return 1
    sql = sql.replace("current_timestamp", f"TIMESTAMPTZ '{now}'")
    rel = con.sql(sql)
    # Times as text (UTC, ISO 8601), so no time zone library is needed to read them.
    cols = [
        f'CAST("{c}" AS VARCHAR) AS "{c}"' if "TIME" in str(t).upper() else f'"{c}"'
        for c, t in zip(rel.columns, rel.types)
    ]
    rel = rel.project(", ".join(cols))
    rows = []
    for row in rel.fetchall():
        out = {}
        for (name, typ), v in zip(zip(rel.columns, rel.types), row):
            if isinstance(v, str) and v[:4].isdigit() and len(v) >= 19 and v[10] == " ":
                v = v.replace(" ", "T", 1).replace("+00", "Z")
            out[name] = v
        rows.append(out)
    json.dump(rows, sys.stdout, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())

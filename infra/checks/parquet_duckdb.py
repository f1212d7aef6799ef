"""Reads polytape's Parquet the way Athena would see it, with DuckDB: Hive partitions typed as
the Glue tables declare them (tier SMALLINT, dt VARCHAR). Prints JSON: per table, the column
types DuckDB reads and the row count per tier. Used by the end-to-end tests."""
import json
import sys

import duckdb

root = sys.argv[1]
out = {}
for table in sys.argv[2:]:
    src = (
        f"read_parquet('{root}/{table}/**/*.parquet', hive_partitioning=true, "
        "hive_types={'tier': 'SMALLINT', 'dt': 'VARCHAR'})"
    )
    con = duckdb.connect()
    cols = con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()
    rows = con.execute(f"SELECT tier, count(*) FROM {src} GROUP BY tier ORDER BY tier").fetchall()
    dts = con.execute(f"SELECT DISTINCT dt FROM {src} ORDER BY dt").fetchall()
    out[table] = {
        "types": {name: typ for name, typ, *_ in cols},
        "rows_per_tier": {str(t): n for t, n in rows},
        "dt": [d for (d,) in dts],
    }
print(json.dumps(out))

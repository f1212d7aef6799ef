//! template.yaml against the code it mirrors: each Glue table's columns, types, partition keys
//! and projection against the Parquet writer (`polytape_store::parquet`), the training-set
//! named query's SELECT list against the export's columns (`parquet::training_columns`), the
//! EventBridge schedules and the `TierTable` mapping against the tier table
//! (`polytape_core::TIERS`), the views of the compacted tables against the reading rule and the
//! writer, the compaction settle time against the queues' retry horizons, the dashboard's
//! body as JSON on CloudWatch's grid, and (feature `aws`)
//! the DynamoDB tables, the Markets index, the
//! functions' environment and the S3 object grants against the AWS adapter
//! (`polytape_store::aws`, `polytape_store::keys`). Changing one side without the other fails
//! here.
//!
//! The template is read by `infra/checks/template_json.py` with the SAM venv's python
//! (`POLYTAPE_PYTHON_SAM`, exported by `infra/tools.sh`), which decodes the short-form tags
//! (`!Ref`, `!Sub`) the way cfn-lint does. Without it the template tests skip with a line,
//! unless `POLYTAPE_REQUIRE_TOOLS` is set (infra/test.sh), when they fail. The checks themselves
//! are plain functions over JSON; the `given_a_drifted_…` tests run them on a template built
//! from the code and then changed, so each check is shown to fail when one side moves.

use polytape_core::schedule::ticks_per_hour;
use polytape_core::{TierSpec, TIERS};
use polytape_store::keys;
use polytape_store::parquet::{
    fill_columns, market_columns, orderbook_columns, partition_columns, position_columns,
    resolution_columns, signal_columns, snapshot_columns, tape_columns, trade_columns,
    training_columns, transition_columns, whale_event_columns, Column,
};
use serde_json::{json, Value};
use std::sync::OnceLock;

// ---------------------------------------------------------------------------------------------
// Reading the template
// ---------------------------------------------------------------------------------------------

/// The decoded template.yaml, or `None` (after printing why) when the SAM venv is not set up.
fn template() -> Option<&'static Value> {
    static TEMPLATE: OnceLock<Option<Value>> = OnceLock::new();
    TEMPLATE.get_or_init(load_template).as_ref()
}

fn load_template() -> Option<Value> {
    let Ok(python) = std::env::var("POLYTAPE_PYTHON_SAM") else {
        assert!(
            std::env::var("POLYTAPE_REQUIRE_TOOLS").is_err(),
            "POLYTAPE_PYTHON_SAM is not set: run infra/test.sh (or eval \"$(infra/tools.sh)\")"
        );
        eprintln!(
            "skipped the template checks: POLYTAPE_PYTHON_SAM not set (infra/test.sh sets it)"
        );
        return None;
    };
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let out = std::process::Command::new(&python)
        .arg(format!("{root}/infra/checks/template_json.py"))
        .arg(format!("{root}/template.yaml"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    assert!(
        out.status.success(),
        "template_json.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).expect("template_json.py prints JSON"))
}

/// A scalar as text: YAML `60`, `"60"` and `true`/`"true"` compare alike.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The text of a plain string or of a `!Sub` (either form), else empty.
fn sub_text(v: &Value) -> String {
    let sub = &v["Fn::Sub"];
    let s = if sub.is_array() { &sub[0] } else { sub };
    s.as_str().or(v.as_str()).unwrap_or_default().to_string()
}

/// The one resource of type `ty` whose property at `name_path` is `name`.
fn resource_named<'a>(t: &'a Value, ty: &str, name_path: &str, name: &str) -> Option<&'a Value> {
    let resources = t["Resources"].as_object()?;
    let mut found = resources
        .values()
        .filter(|r| r["Type"] == ty && r["Properties"].pointer(name_path) == Some(&json!(name)));
    let first = found.next();
    assert!(found.next().is_none(), "two {ty} resources named {name}");
    first
}

// ---------------------------------------------------------------------------------------------
// Glue tables against the Parquet writer
// ---------------------------------------------------------------------------------------------

/// What the Glue table `table` must declare: the writer's columns, its partition columns, and
/// for a `tier` partition the projected range of tier numbers.
struct Expected {
    table: &'static str,
    columns: &'static [Column],
    partitions: &'static [Column],
    tier_range: Option<(u8, u8)>,
}

/// The tier range a table's files exist for: every tier for `snapshots`, the order-book tiers
/// for `orderbooks` (they must be contiguous for an integer projection). The tables partitioned
/// by `dt` alone (`markets`, `resolutions`, `tier_transitions`, `trades`, `whale_events`,
/// `raw_ws`, `signals`, `fills`, `positions`) have none.
fn tier_range(filter: impl Fn(&TierSpec) -> bool) -> (u8, u8) {
    let tiers: Vec<u8> = TIERS
        .iter()
        .filter(|s| filter(s))
        .map(|s| s.tier.number())
        .collect();
    let (lo, hi) = (tiers[0], tiers[tiers.len() - 1]);
    assert_eq!(
        tiers,
        (lo..=hi).collect::<Vec<_>>(),
        "the tiers are not contiguous"
    );
    (lo, hi)
}

fn expected_tables() -> Vec<Expected> {
    vec![
        Expected {
            table: "snapshots",
            columns: snapshot_columns(),
            partitions: partition_columns("snapshots"),
            tier_range: Some(tier_range(|_| true)),
        },
        Expected {
            table: "orderbooks",
            columns: orderbook_columns(),
            partitions: partition_columns("orderbooks"),
            tier_range: Some(tier_range(|s| s.order_book)),
        },
        Expected {
            table: "markets",
            columns: market_columns(),
            partitions: partition_columns("markets"),
            tier_range: None,
        },
        Expected {
            table: "resolutions",
            columns: resolution_columns(),
            partitions: partition_columns("resolutions"),
            tier_range: None,
        },
        Expected {
            table: "tier_transitions",
            columns: transition_columns(),
            partitions: partition_columns("tier_transitions"),
            tier_range: None,
        },
        Expected {
            table: "trades",
            columns: trade_columns(),
            partitions: partition_columns("trades"),
            tier_range: None,
        },
        Expected {
            table: "whale_events",
            columns: whale_event_columns(),
            partitions: partition_columns("whale_events"),
            tier_range: None,
        },
        Expected {
            table: "raw_ws",
            columns: tape_columns(),
            partitions: partition_columns("raw_ws"),
            tier_range: None,
        },
        Expected {
            table: "signals",
            columns: signal_columns(),
            partitions: partition_columns("signals"),
            tier_range: None,
        },
        Expected {
            table: "fills",
            columns: fill_columns(),
            partitions: partition_columns("fills"),
            tier_range: None,
        },
        Expected {
            table: "positions",
            columns: position_columns(),
            partitions: partition_columns("positions"),
            tier_range: None,
        },
    ]
}

fn pairs(list: &Value) -> Vec<(String, String)> {
    list.as_array()
        .map(|cols| {
            cols.iter()
                .map(|c| (text(&c["Name"]), text(&c["Type"])))
                .collect()
        })
        .unwrap_or_default()
}

fn of(columns: &[Column]) -> Vec<(String, String)> {
    columns
        .iter()
        .map(|c| (c.name.to_string(), c.athena_type.to_string()))
        .collect()
}

/// The Glue table over a table's files: `<table>_files` for a compacted table (read through
/// the view named for the table, [`view_problems`]), else the table's own name.
fn glue_name(table: &str) -> String {
    if keys::COMPACTED_TABLES.contains(&table) {
        format!("{table}_files")
    } else {
        table.to_string()
    }
}

/// Every way the Glue table of `e.table` in `t` differs from the writer (empty when it agrees).
fn glue_problems(t: &Value, e: &Expected) -> Vec<String> {
    let glue = glue_name(e.table);
    let Some(res) = resource_named(t, "AWS::Glue::Table", "/TableInput/Name", &glue) else {
        return vec![format!("{}: no AWS::Glue::Table named {glue}", e.table)];
    };
    let input = &res["Properties"]["TableInput"];
    let mut problems = Vec::new();

    let declared = pairs(&input["StorageDescriptor"]["Columns"]);
    let written = of(e.columns);
    if declared != written {
        let n = declared.len().max(written.len());
        for i in 0..n {
            if declared.get(i) != written.get(i) {
                problems.push(format!(
                    "{}: column {i} is {:?} in template.yaml but {:?} in the writer",
                    e.table,
                    declared.get(i),
                    written.get(i)
                ));
                break;
            }
        }
        if declared.len() != written.len() {
            problems.push(format!(
                "{}: {} columns in template.yaml, {} in the writer",
                e.table,
                declared.len(),
                written.len()
            ));
        }
    }

    let keys = pairs(&input["PartitionKeys"]);
    if keys != of(e.partitions) {
        problems.push(format!(
            "{}: partition keys {keys:?} in template.yaml, {:?} in the writer",
            e.table,
            of(e.partitions)
        ));
    }

    // Partition projection: one projection per key, and the location template walks the keys
    // in the writer's order (`<table>/tier=${tier}/dt=${dt}/`, `${!x}` escaping `${x}` in !Sub).
    let params = &input["Parameters"];
    if text(&params["projection.enabled"]) != "true" {
        problems.push(format!("{}: projection.enabled is not \"true\"", e.table));
    }
    let mut suffix = format!("/{}/", e.table);
    for p in e.partitions {
        suffix.push_str(&format!("{0}=${{!{0}}}/", p.name));
        let ty = text(&params[format!("projection.{}.type", p.name)]);
        let ok = match p.name {
            "tier" => {
                let range = e.tier_range.map(|(lo, hi)| format!("{lo},{hi}"));
                let declared = text(&params["projection.tier.range"]);
                if range.as_deref() != Some(declared.as_str()) {
                    problems.push(format!(
                        "{}: projection.tier.range is {declared:?}, the tier table says {range:?}",
                        e.table
                    ));
                }
                ty == "integer"
            }
            "dt" => {
                ty == "date"
                    && text(&params["projection.dt.format"]) == "yyyy-MM-dd"
                    && params["projection.dt.range"].to_string().contains(",NOW")
            }
            _ => false,
        };
        if !ok {
            problems.push(format!(
                "{}: partition {} has no matching projection (type {ty:?})",
                e.table, p.name
            ));
        }
    }
    let location = sub_text(&params["storage.location.template"]);
    if !location.ends_with(&suffix) {
        problems.push(format!(
            "{}: storage.location.template {location} does not end with {suffix}",
            e.table
        ));
    }
    problems
}

// ---------------------------------------------------------------------------------------------
// The views of the compacted tables: the reading rule, over every column of the writer
// ---------------------------------------------------------------------------------------------

/// The Presto (Trino) type Athena's view definition names for a Hive type of the Glue tables:
/// `string` → `varchar`, `int` → `integer`, `array<struct<a:t,…>>` → `array(row(a t, …))`.
fn presto_type(hive: &str) -> String {
    if let Some(inner) = hive
        .strip_prefix("array<")
        .and_then(|r| r.strip_suffix('>'))
    {
        return format!("array({})", presto_type(inner));
    }
    if let Some(fields) = hive
        .strip_prefix("struct<")
        .and_then(|r| r.strip_suffix('>'))
    {
        // Split on the commas outside parentheses and brackets (decimal(18,6) has one).
        let (mut depth, mut start, mut out) = (0i32, 0, Vec::new());
        for (i, c) in fields.char_indices() {
            match c {
                '(' | '<' => depth += 1,
                ')' | '>' => depth -= 1,
                ',' if depth == 0 => {
                    out.push(&fields[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        out.push(&fields[start..]);
        let fields: Vec<String> = out
            .iter()
            .map(|f| {
                let (name, ty) = f.split_once(':').unwrap_or((f, ""));
                format!("{name} {}", presto_type(ty))
            })
            .collect();
        return format!("row({})", fields.join(", "));
    }
    match hive {
        "string" => "varchar".into(),
        "int" => "integer".into(),
        other => other.into(),
    }
}

/// The view's SQL: the reading rule over `<table>_files`, every column of the writer and the
/// partition columns, in that order. One scan: the window counts the hour's compacted files
/// among the files the query lists (`$path`), partitioned by the partition columns first so a
/// filter on them is pushed below it to the partition projection.
fn view_sql(e: &Expected) -> String {
    let columns: Vec<&str> = e
        .columns
        .iter()
        .chain(e.partitions)
        .map(|c| c.name)
        .collect();
    let by: Vec<String> = e
        .partitions
        .iter()
        .map(|p| format!("f.{}", p.name))
        .collect();
    format!(
        "SELECT {} FROM (SELECT f.*, f.\"$path\" AS polytape_file, count_if(f.\"$path\" LIKE \
         '%.compacted.parquet') OVER (PARTITION BY {}, regexp_extract(f.\"$path\", \
         '([0-9]{{8}}T[0-9]{{2}})[^/]*$', 1)) AS polytape_hour_compacted FROM {} f) WHERE \
         polytape_file LIKE '%.compacted.parquet' OR polytape_hour_compacted = 0",
        columns.join(", "),
        by.join(", "),
        glue_name(e.table)
    )
}

/// The Presto view definition of a Glue view, decoded (`${GlueDatabase}` left as it is).
fn presto_view(input: &Value) -> Result<Value, String> {
    let parts = &input["ViewOriginalText"]["Fn::Join"][1];
    if parts[0] != "/* Presto View: " || parts[2] != " */" {
        return Err(format!(
            "ViewOriginalText is not a Presto view: {}",
            input["ViewOriginalText"]
        ));
    }
    serde_json::from_str(&sub_text(&parts[1]["Fn::Base64"]))
        .map_err(|err| format!("the view definition is not JSON: {err}"))
}

/// Every way the view of compacted table `e.table` differs from the reading rule and the writer.
fn view_problems(t: &Value, e: &Expected) -> Vec<String> {
    let Some(res) = resource_named(t, "AWS::Glue::Table", "/TableInput/Name", e.table) else {
        return vec![format!("{}: no view named {}", e.table, e.table)];
    };
    let input = &res["Properties"]["TableInput"];
    let mut problems = Vec::new();
    if input["TableType"] != "VIRTUAL_VIEW" || text(&input["Parameters"]["presto_view"]) != "true" {
        problems.push(format!("{}: not an Athena (Presto) view", e.table));
    }
    let want = of(&[e.columns, e.partitions].concat());
    let declared = pairs(&input["StorageDescriptor"]["Columns"]);
    if declared != want {
        problems.push(format!(
            "{}: the view's columns are {declared:?}, the writer's and partitions {want:?}",
            e.table
        ));
    }
    match presto_view(input) {
        Err(err) => problems.push(format!("{}: {err}", e.table)),
        Ok(view) => {
            let presto: Vec<(String, String)> = view["columns"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| (text(&c["name"]), text(&c["type"])))
                .collect();
            let want_presto: Vec<(String, String)> = want
                .iter()
                .map(|(n, ty)| (n.clone(), presto_type(ty)))
                .collect();
            if presto != want_presto {
                problems.push(format!(
                    "{}: the view definition's columns are {presto:?}, expected {want_presto:?}",
                    e.table
                ));
            }
            if view["catalog"] != "awsdatacatalog" || view["schema"] != "${GlueDatabase}" {
                problems.push(format!(
                    "{}: the view is not in the stack's database",
                    e.table
                ));
            }
            let sql = text(&view["originalSql"]);
            if sql != view_sql(e) {
                problems.push(format!(
                    "{}: the view's SQL is\n  {sql}\nnot the reading rule\n  {}",
                    e.table,
                    view_sql(e)
                ));
            }
        }
    }
    problems
}

// ---------------------------------------------------------------------------------------------
// The training-set named query against the export's columns
// ---------------------------------------------------------------------------------------------

/// The logical id of the named query that writes the training set.
const TRAINING_QUERY: &str = "TrainingSetQuery";

/// Where the training set is unloaded: the run's own folder goes after it.
const TRAINING_PREFIX: &str = "s3://${DataBucket}/exports/training_set/";

/// The tokens of a query: words (identifiers, keywords, numbers), quoted strings and
/// identifiers (quotes kept), and single punctuation characters; `-- …` comments dropped.
fn sql_tokens(sql: &str) -> Vec<String> {
    let chars: Vec<char> = sql.chars().collect();
    let word = |c: char| c.is_alphanumeric() || c == '_';
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        if c.is_whitespace() {
            i += 1;
            continue;
        } else if c == '-' && chars.get(i + 1) == Some(&'-') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        } else if c == '\'' || c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != c {
                i += 1;
            }
            i = (i + 1).min(chars.len());
        } else if word(c) {
            while i < chars.len() && word(chars[i]) {
                i += 1;
            }
        } else {
            i += 1;
        }
        out.push(chars[start..i].iter().collect());
    }
    out
}

fn is_word(token: &str) -> bool {
    !token.is_empty() && token.chars().all(|c| c.is_alphanumeric() || c == '_')
}

/// An `UNLOAD (SELECT …) TO '…' WITH (…)` statement, as far as the checks need it.
#[derive(Debug)]
struct Unload {
    /// The output columns of the SELECT, in order (lower-cased, as Athena names them).
    columns: Vec<String>,
    /// The TO location, without its quotes.
    to: String,
    /// The WITH properties, names lower-cased, values without their quotes.
    with: Vec<(String, String)>,
}

/// The name an item of a SELECT list gives its output column: its alias (`… AS name`), or the
/// column a bare `name` or `t.name` reads. Anything else (an expression without an alias, a
/// `*`) has no name the check can hold to the export, so it is an error.
fn item_name(item: &[String]) -> Result<String, String> {
    let name = match item {
        [.., kw, alias] if kw.eq_ignore_ascii_case("as") && is_word(alias) => alias,
        [col] if is_word(col) => col,
        [table, dot, col] if is_word(table) && dot == "." && is_word(col) => col,
        _ => {
            return Err(format!(
                "select item `{}` names no column: give it an alias",
                item.join(" ")
            ))
        }
    };
    Ok(name.to_lowercase())
}

/// Parses `sql` as `UNLOAD ( SELECT <items> FROM … ) TO '<location>' WITH ( k = 'v', … )`.
fn parse_unload(sql: &str) -> Result<Unload, String> {
    let tokens = sql_tokens(sql);
    let kw = |i: usize, want: &str| tokens.get(i).is_some_and(|t| t.eq_ignore_ascii_case(want));
    if !(kw(0, "unload") && kw(1, "(") && kw(2, "select")) {
        return Err(format!(
            "does not start with `UNLOAD ( SELECT`: {:?}",
            &tokens[..tokens.len().min(3)]
        ));
    }
    // The SELECT list: items split at the commas outside parentheses, up to its FROM.
    let (mut columns, mut item, mut depth) = (Vec::new(), Vec::new(), 0usize);
    let mut i = 3;
    loop {
        let Some(t) = tokens.get(i) else {
            return Err("the SELECT list has no FROM".into());
        };
        match t.as_str() {
            "(" => depth += 1,
            ")" if depth == 0 => return Err("the SELECT list has no FROM".into()),
            ")" => depth -= 1,
            _ => {}
        }
        if depth == 0 && (t == "," || t.eq_ignore_ascii_case("from")) {
            columns.push(item_name(&item)?);
            item.clear();
            if t != "," {
                break;
            }
        } else {
            item.push(t.clone());
        }
        i += 1;
    }
    // The parenthesis UNLOAD opened closes the query; TO and WITH follow.
    let mut depth = 1usize;
    while depth > 0 {
        i += 1;
        match tokens.get(i).map(String::as_str) {
            Some("(") => depth += 1,
            Some(")") => depth -= 1,
            Some(_) => {}
            None => return Err("the UNLOAD parenthesis is not closed".into()),
        }
    }
    let unquote = |t: &String| t.trim_matches('\'').to_string();
    if !kw(i + 1, "to") || !tokens.get(i + 2).is_some_and(|t| t.starts_with('\'')) {
        return Err("no `TO '<location>'` after the query".into());
    }
    let to = unquote(&tokens[i + 2]);
    let mut with = Vec::new();
    if kw(i + 3, "with") && kw(i + 4, "(") {
        let mut j = i + 5;
        while let (Some(k), Some(eq), Some(v)) =
            (tokens.get(j), tokens.get(j + 1), tokens.get(j + 2))
        {
            if eq != "=" {
                return Err(format!("WITH property {k} has no `=`"));
            }
            with.push((k.to_lowercase(), unquote(v)));
            match tokens.get(j + 3).map(String::as_str) {
                Some(",") => j += 4,
                Some(")") => break,
                _ => return Err("the WITH properties are not closed".into()),
            }
        }
    }
    Ok(Unload { columns, to, with })
}

/// Every way the training-set named query of `t` differs from the export (empty when it agrees):
/// its SELECT list is exactly [`training_columns`] in order, it unloads Snappy Parquet into its
/// own folder under `exports/training_set/`, it runs in the stack's database and workgroup, and
/// its description names the folder placeholder the user replaces.
fn training_query_problems(t: &Value) -> Vec<String> {
    let q = &t["Resources"][TRAINING_QUERY];
    if q["Type"] != "AWS::Athena::NamedQuery" {
        return vec![format!("{TRAINING_QUERY}: no AWS::Athena::NamedQuery")];
    }
    let props = &q["Properties"];
    let mut problems = Vec::new();
    for (key, want) in [
        ("Database", "GlueDatabase"),
        ("WorkGroup", "AthenaWorkGroup"),
    ] {
        if props[key] != json!({ "Ref": want }) {
            problems.push(format!(
                "{TRAINING_QUERY}: {key} is {}, not !Ref {want}",
                props[key]
            ));
        }
    }
    let unload = match parse_unload(&sub_text(&props["QueryString"])) {
        Ok(u) => u,
        Err(e) => {
            problems.push(format!("{TRAINING_QUERY}: {e}"));
            return problems;
        }
    };
    let want: Vec<String> = training_columns()
        .iter()
        .map(|c| c.name.to_string())
        .collect();
    if unload.columns != want {
        let at = (0..want.len().max(unload.columns.len()))
            .find(|&i| unload.columns.get(i) != want.get(i))
            .unwrap_or_default();
        problems.push(format!(
            "{TRAINING_QUERY}: select item {at} is {:?}, the export's column {at} is {:?} \
             ({} items, {} columns)",
            unload.columns.get(at),
            want.get(at),
            unload.columns.len(),
            want.len()
        ));
    }
    let run = unload
        .to
        .strip_prefix(TRAINING_PREFIX)
        .and_then(|r| r.strip_suffix('/'))
        .filter(|r| is_word(r));
    match run {
        None => problems.push(format!(
            "{TRAINING_QUERY}: unloads to {:?}, not to a folder of {TRAINING_PREFIX}",
            unload.to
        )),
        Some(run) => {
            let description = text(&props["Description"]);
            if !description.contains(run) {
                problems.push(format!(
                    "{TRAINING_QUERY}: the description does not say to replace {run}"
                ));
            }
        }
    }
    let mut with = unload.with.clone();
    with.sort();
    for (k, v) in [("compression", "SNAPPY"), ("format", "PARQUET")] {
        if !with
            .iter()
            .any(|(wk, wv)| wk == k && wv.eq_ignore_ascii_case(v))
        {
            problems.push(format!("{TRAINING_QUERY}: WITH {with:?} lacks {k} = '{v}'"));
        }
    }
    problems
}

// ---------------------------------------------------------------------------------------------
// Schedules and the TierTable mapping against the tier table
// ---------------------------------------------------------------------------------------------

/// The schedule expressions of the `Schedule`/`ScheduleV2` events of function `logical_id`.
fn schedules(t: &Value, logical_id: &str) -> Vec<String> {
    let events = &t["Resources"][logical_id]["Properties"]["Events"];
    events
        .as_object()
        .map(|evs| {
            evs.values()
                .filter(|e| e["Type"] == "Schedule" || e["Type"] == "ScheduleV2")
                .map(|e| text(&e["Properties"]["Schedule"]))
                .collect()
        })
        .unwrap_or_default()
}

/// Seconds between firings of `rate(N unit)`; `None` for anything else (a cron, a typo).
fn rate_seconds(expr: &str) -> Option<u32> {
    let inner = expr.strip_prefix("rate(")?.strip_suffix(')')?;
    let (n, unit) = inner.split_once(' ')?;
    let n: u32 = n.parse().ok()?;
    let unit_s = match unit {
        "minute" | "minutes" => 60,
        "hour" | "hours" => 3600,
        "day" | "days" => 86_400,
        _ => return None,
    };
    // EventBridge wants the singular exactly for 1 and the plural otherwise.
    (unit.ends_with('s') == (n != 1)).then_some(n * unit_s)
}

/// Whether a dispatcher firing every `period_s` seconds can start every tick of a tier ticking
/// every `interval_s`: either ticks fall on firings, or they divide the period and each is
/// reached with an SQS delay of 0/15/30/45 s.
fn servable(period_s: u32, interval_s: u32) -> bool {
    if interval_s == 0 || period_s == 0 {
        return false;
    }
    if interval_s.is_multiple_of(period_s) {
        return true;
    }
    period_s.is_multiple_of(interval_s)
        && (0..period_s)
            .step_by(interval_s as usize)
            .all(|delay| delay % 15 == 0 && delay <= 45)
}

/// Every way the schedules of `t` disagree with the tier table and the fixed cadences.
fn schedule_problems(t: &Value, tiers: &[TierSpec]) -> Vec<String> {
    let mut problems = Vec::new();
    for (function, want) in [
        ("SnapshotFunction", "rate(1 minute)"),
        ("MaintenanceFunction", "rate(5 minutes)"),
        // Every minute it asks whether discovery is due (hourly, sooner after a failure).
        ("DiscoveryFunction", "rate(1 minute)"),
    ] {
        let got = schedules(t, function);
        if got != [want] {
            problems.push(format!(
                "{function}: schedules {got:?}, expected [{want:?}]"
            ));
        }
    }
    let dispatch = schedules(t, "SnapshotFunction");
    match dispatch.first().and_then(|s| rate_seconds(s)) {
        None => problems.push(format!(
            "the dispatcher's schedule {dispatch:?} is not a rate"
        )),
        Some(period) => {
            for s in tiers {
                if !servable(period, s.interval_s) {
                    problems.push(format!(
                        "{}: a tick every {} s cannot be dispatched by a schedule every {period} s",
                        s.tier, s.interval_s
                    ));
                }
            }
        }
    }
    problems
}

/// Every way the `TierTable` mapping of `t` differs from `tiers`.
fn mapping_problems(t: &Value, tiers: &[TierSpec]) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(table) = t["Mappings"]["TierTable"].as_object() else {
        return vec!["no Mappings.TierTable".to_string()];
    };
    let names: Vec<String> = tiers.iter().map(|s| s.tier.to_string()).collect();
    let mut keys: Vec<&String> = table.keys().collect();
    keys.sort();
    if keys != names.iter().collect::<Vec<_>>() {
        problems.push(format!(
            "TierTable has tiers {keys:?}, the tier table {names:?}"
        ));
    }
    for s in tiers {
        let row = &table.get(&s.tier.to_string()).cloned().unwrap_or_default();
        let want = [
            ("IntervalSeconds", s.interval_s.to_string()),
            ("TicksPerHour", (3600 / s.interval_s).to_string()),
            ("OrderBook", s.order_book.to_string()),
            ("WebSocket", s.websocket.to_string()),
            ("AlarmPeriodSeconds", s.interval_s.max(300).to_string()),
        ];
        for (key, value) in want {
            let got = text(&row[key]);
            if got != value {
                problems.push(format!(
                    "TierTable.{}.{key} is {got:?}, the tier table says {value:?}",
                    s.tier
                ));
            }
        }
    }
    problems
}

// ---------------------------------------------------------------------------------------------
// The template as it is
// ---------------------------------------------------------------------------------------------

#[test]
fn given_template_yaml_then_each_glue_table_equals_the_parquet_writer_schema() {
    let Some(t) = template() else { return };
    let problems: Vec<String> = expected_tables()
        .iter()
        .flat_map(|e| glue_problems(t, e))
        .collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn given_template_yaml_then_each_compacted_table_is_read_through_a_view_of_the_reading_rule() {
    let Some(t) = template() else { return };
    let problems: Vec<String> = expected_tables()
        .iter()
        .filter(|e| keys::COMPACTED_TABLES.contains(&e.table))
        .flat_map(|e| view_problems(t, e))
        .collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn given_template_yaml_then_compaction_waits_out_every_retry_that_can_write_a_file() {
    let Some(t) = template() else { return };
    let props = |id: &str| &t["Resources"][id]["Properties"];
    let num = |v: &Value| {
        text(v)
            .parse::<u64>()
            .unwrap_or_else(|_| panic!("not a number: {v}"))
    };
    // The last write a retry can make, after the message first became visible: every receive
    // but the last waits out the visibility timeout, and the last runs the function's timeout;
    // the event source may first wait its batching window.
    let horizon = |queue: &str, function: &str, event: &str| {
        let q = props(queue);
        let window =
            &props(function)["Events"][event]["Properties"]["MaximumBatchingWindowInSeconds"];
        num(&q["VisibilityTimeout"]) * num(&q["RedrivePolicy"]["maxReceiveCount"])
            + num(&props(function)["Timeout"])
            + if window.is_null() { 0 } else { num(window) }
    };
    let live = horizon("LiveQueue", "TradesFunction", "Live");
    let ticks = horizon("TicksQueue", "SnapshotFunction", "Ticks");
    let settle =
        num(&props("MaintenanceFunction")["Environment"]["Variables"]["POLYTAPE_COMPACT_SETTLE_S"]);
    assert_eq!(
        (live, ticks),
        (2730, 1140),
        "the derivation docs/architecture.md and the collector's config give"
    );
    assert!(
        settle >= live.max(ticks),
        "an hour is compacted {settle} s after its end, but a retry may write {} s after",
        live.max(ticks)
    );
    assert_eq!(
        Some(settle),
        Some(
            polytape_store::compact::CompactOptions::default()
                .settle
                .as_secs()
        ),
        "the template and the code's default agree"
    );
}

/// The days `key` stays as a noncurrent version: the shortest `NoncurrentDays` of the enabled
/// lifecycle rules whose prefix it starts with (S3 honours the shorter of overlapping expiries).
fn noncurrent_days(t: &Value, key: &str) -> Option<u64> {
    let rules = t["Resources"]["DataBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
        .as_array()
        .expect("DataBucket has lifecycle rules");
    rules
        .iter()
        .filter(|r| text(&r["Status"]) == "Enabled")
        .filter(|r| key.starts_with(r["Prefix"].as_str().unwrap_or_default()))
        .filter_map(|r| {
            text(&r["NoncurrentVersionExpiration"]["NoncurrentDays"])
                .parse()
                .ok()
        })
        .min()
}

#[test]
fn given_template_yaml_then_merged_sources_are_kept_a_day_and_other_replaced_objects_a_week() {
    let Some(t) = template() else { return };
    let tick = polytape_core::TickId {
        tier: polytape_core::Tier::T4,
        tick_ts: "2026-11-20T22:30:15Z".parse().expect("a time"),
    };
    // A source of each table compaction merges, as its writer names it.
    for table in keys::COMPACTED_TABLES {
        let key = match table {
            keys::SNAPSHOTS => keys::snapshots(&tick),
            keys::ORDERBOOKS => keys::orderbooks(&tick),
            other => format!(
                "{}dt=2026-11-20/20261120T22-1-0.parquet",
                keys::table_prefix(other)
            ),
        };
        assert_eq!(noncurrent_days(t, &key), Some(1), "{key}");
    }
    // Objects compaction never deletes: replaced versions stay a week.
    for key in [
        keys::latest(polytape_core::Tier::T4),
        keys::END_DATES.to_string(),
        keys::LIVE_FLOW.to_string(),
        keys::RESULT_COUNTS.to_string(),
        format!(
            "{}dt=2026-11-20/x.parquet",
            keys::table_prefix(keys::MARKETS)
        ),
        format!("{}x.parquet", keys::table_prefix(keys::RESOLUTIONS)),
    ] {
        assert_eq!(noncurrent_days(t, &key), Some(7), "{key}");
    }
}

/// `v` as CloudFormation would resolve it for the given parameters: `Ref` (a parameter, else
/// `<LogicalId>` for a resource), `Fn::If` over the template's conditions, `Fn::Join`,
/// `Fn::Split`, `Fn::Equals`, `Fn::And`, `Fn::Not`; other functions as written, and plain
/// lists and maps member by member.
fn resolve(t: &Value, v: &Value, params: &[(&str, &str)]) -> Value {
    let go = |x: &Value| resolve(t, x, params);
    let condition = |name: &str| go(&t["Conditions"][name]) == Value::Bool(true);
    let Some((key, arg)) = v
        .as_object()
        .filter(|o| o.len() == 1)
        .and_then(|o| o.iter().next())
    else {
        return match v {
            Value::Array(items) => Value::Array(items.iter().map(go).collect()),
            Value::Object(fields) => {
                Value::Object(fields.iter().map(|(k, x)| (k.clone(), go(x))).collect())
            }
            other => other.clone(),
        };
    };
    let strs = |x: Value| -> Vec<String> {
        x.as_array()
            .map(|a| a.iter().map(text).collect())
            .unwrap_or_else(|| panic!("not a list: {x}"))
    };
    match key.as_str() {
        "Ref" => {
            let name = text(arg);
            match params.iter().find(|(p, _)| *p == name) {
                Some((_, value)) => json!(value),
                None if t["Parameters"][&name].is_object() => {
                    t["Parameters"][&name]["Default"].clone()
                }
                None => json!(format!("<{name}>")),
            }
        }
        "Condition" => json!(condition(&text(arg))),
        "Fn::If" => go(&arg[if condition(&text(&arg[0])) { 1 } else { 2 }]),
        "Fn::Equals" => json!(text(&go(&arg[0])) == text(&go(&arg[1]))),
        "Fn::And" => json!(arg
            .as_array()
            .expect("a list")
            .iter()
            .all(|c| go(c) == json!(true))),
        "Fn::Not" => json!(go(&arg[0]) != json!(true)),
        "Fn::Join" => json!(strs(go(&arg[1])).join(&text(&arg[0]))),
        "Fn::Split" => json!(text(&go(&arg[1])).split(&text(&arg[0])).collect::<Vec<_>>()),
        k if k.starts_with("Fn::") => v.clone(),
        _ => json!({ key.clone(): go(arg) }),
    }
}

#[test]
fn given_feed_network_ipv6_only_then_the_task_has_no_ipv4_address_and_every_way_out_is_ipv6() {
    let Some(t) = template() else { return };
    let r = &t["Resources"];
    let usual = "123456789012.dkr.ecr.us-east-1.amazonaws.com/polytape-feed:v1";
    let dual = "123456789012.dkr-ecr.us-east-1.on.aws/polytape-feed:v1";
    let v6 = |image: &'static str| [("FeedImageUri", image), ("FeedNetwork", "ipv6-only")];
    let v4 = [("FeedImageUri", usual)];
    let container = &r["FeedTaskDefinition"]["Properties"]["ContainerDefinitions"][0];
    // The image from the registry's dual-stack name, whichever name was given.
    assert_eq!(resolve(t, &container["Image"], &v6(usual)), json!(dual));
    assert_eq!(resolve(t, &container["Image"], &v6(dual)), json!(dual));
    assert_eq!(resolve(t, &container["Image"], &v4), json!(usual));
    // The AWS SDK on dual-stack endpoints only then.
    let dual_stack = |params: &[(&str, &str)]| {
        let env = container["Environment"].as_array().expect("an environment");
        let var = env
            .iter()
            .find(|e| e["Name"] == "AWS_USE_DUALSTACK_ENDPOINT")
            .expect("AWS_USE_DUALSTACK_ENDPOINT is set");
        text(&resolve(t, &var["Value"], params))
    };
    assert_eq!(
        (dual_stack(&v6(usual)), dual_stack(&v4)),
        ("true".into(), "false".into())
    );
    // No public IPv4 address; the stack's own subnets.
    let net = &r["FeedService"]["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"];
    assert_eq!(
        resolve(t, &net["AssignPublicIp"], &v6(usual)),
        json!("DISABLED")
    );
    assert_eq!(resolve(t, &net["AssignPublicIp"], &v4), json!("ENABLED"));
    let subnets = resolve(t, &net["Subnets"], &v6(usual));
    let subnets: Vec<String> = subnets
        .as_array()
        .expect("a list")
        .iter()
        .map(text)
        .collect();
    assert_eq!(
        subnets.len(),
        2,
        "two zones for Spot to choose from: {subnets:?}"
    );
    let of_type = |ty: &'static str| {
        r.as_object()
            .expect("resources")
            .iter()
            .filter(move |(_, res)| res["Type"] == ty)
    };
    let ipv6_only = |id: &str| resolve(t, &json!({"Condition": r[id]["Condition"]}), &v6(usual));
    for subnet in &subnets {
        let id = subnet.trim_matches(['<', '>']);
        let p = &r[id]["Properties"];
        assert_eq!(ipv6_only(id), json!(true), "{id} exists only for ipv6-only");
        assert_eq!(text(&p["Ipv6Native"]), "true", "{id} is IPv6-only");
        assert!(p["CidrBlock"].is_null(), "{id} has no IPv4 range");
        assert_eq!(text(&p["AssignIpv6AddressOnCreation"]), "true", "{id}");
        // Its route table sends ::/0 to an egress-only internet gateway.
        let (assoc_id, assoc) = of_type("AWS::EC2::SubnetRouteTableAssociation")
            .find(|(_, a)| a["Properties"]["SubnetId"] == json!({"Ref": id}))
            .unwrap_or_else(|| panic!("{id} has no route table"));
        let table = &assoc["Properties"]["RouteTableId"];
        let (route_id, route) = of_type("AWS::EC2::Route")
            .find(|(_, rt)| &rt["Properties"]["RouteTableId"] == table)
            .unwrap_or_else(|| panic!("{id}'s route table has no route"));
        assert_eq!(route["Properties"]["DestinationIpv6CidrBlock"], "::/0");
        let gateway = text(&route["Properties"]["EgressOnlyInternetGatewayId"]["Ref"]);
        assert_eq!(r[&gateway]["Type"], "AWS::EC2::EgressOnlyInternetGateway");
        // The service starts once that route and association exist.
        let ready = text(&r["FeedService"]["DependsOn"]);
        let waits = resolve(t, &r[&ready]["Metadata"], &v6(usual)).to_string();
        assert!(
            waits.contains(&format!("<{route_id}>")),
            "{ready} waits for {route_id}"
        );
        assert!(
            waits.contains(&format!("<{assoc_id}>")),
            "{ready} waits for {assoc_id}"
        );
    }
    // Without ipv6-only none of the network is made.
    for (id, _) in of_type("AWS::EC2::Subnet") {
        let made = resolve(t, &json!({"Condition": r[id]["Condition"]}), &v4);
        assert_eq!(made, json!(false), "{id} made for public-ipv4");
    }
    // The security group lets HTTPS out over IPv6.
    let egress = r["FeedSecurityGroup"]["Properties"]["SecurityGroupEgress"]
        .as_array()
        .expect("egress rules");
    assert!(egress
        .iter()
        .any(|e| e["CidrIpv6"] == "::/0" && text(&e["FromPort"]) == "443"));
    assert_eq!(
        resolve(
            t,
            &r["FeedSecurityGroup"]["Properties"]["VpcId"],
            &v6(usual)
        ),
        json!("<FeedVpc>")
    );
}

#[test]
fn given_template_yaml_then_the_training_set_query_unloads_exactly_the_export_columns() {
    let Some(t) = template() else { return };
    let problems = training_query_problems(t);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn given_template_yaml_then_the_resolutions_period_reaches_the_maintenance_function() {
    let Some(t) = template() else { return };
    let param = &t["Parameters"]["ResolutionsEverySeconds"];
    assert_eq!(text(&param["Type"]), "Number");
    assert_eq!(text(&param["Default"]), "900", "every 15 minutes");
    assert_eq!(text(&param["MinValue"]), "60");
    let var = "POLYTAPE_RESOLUTIONS_EVERY_S";
    let env = |id: &str| &t["Resources"][id]["Properties"]["Environment"]["Variables"];
    assert_eq!(
        env("MaintenanceFunction")[var],
        json!({"Ref": "ResolutionsEverySeconds"}),
        "maintenance runs the resolutions duty when this period is due"
    );
    // Only maintenance runs the duty: no other function (nor Globals) sets the period.
    for id in ["DiscoveryFunction", "SnapshotFunction", "StatusFunction"] {
        assert!(env(id).get(var).is_none(), "{id} sets {var}");
    }
    assert!(t["Globals"]["Function"]["Environment"]["Variables"]
        .get(var)
        .is_none());
}

#[test]
fn given_template_yaml_then_the_schedules_serve_every_tier_of_the_tier_table() {
    let Some(t) = template() else { return };
    let problems = schedule_problems(t, &TIERS);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn given_template_yaml_then_the_tier_table_mapping_equals_core_tiers() {
    let Some(t) = template() else { return };
    let problems = mapping_problems(t, &TIERS);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    for s in TIERS {
        assert_eq!(3600 / s.interval_s, ticks_per_hour(s.tier));
    }
}

#[test]
fn given_template_yaml_then_each_function_runs_the_prebuilt_binary_on_the_chosen_architecture() {
    let Some(t) = template() else { return };
    assert_eq!(t["Parameters"]["Architecture"]["Default"], "arm64");
    let globals = &t["Globals"]["Function"];
    assert_eq!(globals["Runtime"], "provided.al2023");
    assert_eq!(globals["Handler"], "bootstrap");
    assert_eq!(globals["Architectures"], json!([{"Ref": "Architecture"}]));
    for (logical_id, binary) in [
        ("DiscoveryFunction", "discovery"),
        ("SnapshotFunction", "snapshot"),
        ("MaintenanceFunction", "maintenance"),
        ("StatusFunction", "status"),
        ("TradesFunction", "trades"),
    ] {
        assert_eq!(
            t["Resources"][logical_id]["Properties"]["CodeUri"],
            format!("build/lambda/{binary}/"),
            "{logical_id} must point at infra/build-lambdas.sh's output"
        );
    }
}

#[test]
fn given_template_yaml_then_no_tick_can_outlive_the_snapshot_function_and_no_discovery_its_lease() {
    let Some(t) = template() else { return };
    let props = |id: &str| &t["Resources"][id]["Properties"];
    let num = |v: &Value| {
        text(v)
            .parse::<u64>()
            .unwrap_or_else(|_| panic!("not a number: {v}"))
    };
    let snapshot = props("SnapshotFunction");
    let timeout = num(&snapshot["Timeout"]);
    let env = &snapshot["Environment"]["Variables"];
    assert_eq!(
        num(&env["POLYTAPE_FUNCTION_TIMEOUT_S"]),
        timeout,
        "the tick's fallback deadline is the function's timeout"
    );
    let margin = num(&env["POLYTAPE_TICK_MARGIN_S"]);
    // A tick's requests stop `margin` before the invocation's end and everything of it 2 s
    // before (collector's HARD_STOP_MARGIN): the writes keep margin − 2 s, at least one AWS
    // call's whole operation timeout (10 s by default).
    assert!(
        margin >= 12 && margin < timeout,
        "margin {margin} s, timeout {timeout} s"
    );
    let visibility = num(&props("TicksQueue")["VisibilityTimeout"]);
    assert!(
        visibility >= 6 * timeout,
        "SQS event sources want a visibility of 6 × the function timeout: {visibility} < 6 × {timeout}"
    );
    // Discovery and maintenance stop their requests before their end too.
    for id in ["DiscoveryFunction", "MaintenanceFunction"] {
        let p = props(id);
        let env = &p["Environment"]["Variables"];
        assert_eq!(
            num(&env["POLYTAPE_FUNCTION_TIMEOUT_S"]),
            num(&p["Timeout"]),
            "{id}"
        );
        assert!(
            num(&env["POLYTAPE_TICK_MARGIN_S"]) < num(&p["Timeout"]),
            "{id}"
        );
    }
    let discovery = props("DiscoveryFunction");
    let lease = num(&discovery["Environment"]["Variables"]["POLYTAPE_DISCOVERY_LEASE_S"]);
    assert!(
        num(&discovery["Timeout"]) < lease,
        "a discovery run ends (by its timeout at worst) before its lease lapses"
    );
}

// ---------------------------------------------------------------------------------------------
// The checks fail when one side moves (no tools needed)
// ---------------------------------------------------------------------------------------------

/// A template that agrees with the code, built from it: what the checks must accept.
fn template_from_code() -> Value {
    let mut resources = serde_json::Map::new();
    for e in expected_tables() {
        let cols = |c: &[Column]| {
            c.iter()
                .map(|c| json!({"Name": c.name, "Type": c.athena_type}))
                .collect::<Vec<_>>()
        };
        let mut params = json!({
            "projection.enabled": "true",
            "projection.dt.type": "date",
            "projection.dt.format": "yyyy-MM-dd",
            "projection.dt.range": {"Fn::Sub": "${ProjectionStartDate},NOW"},
        });
        let mut location = format!("s3://${{DataBucket}}/{}/", e.table);
        for p in e.partitions {
            location.push_str(&format!("{0}=${{!{0}}}/", p.name));
        }
        params["storage.location.template"] = json!({ "Fn::Sub": location });
        if let Some((lo, hi)) = e.tier_range {
            params["projection.tier.type"] = json!("integer");
            params["projection.tier.range"] = json!(format!("{lo},{hi}"));
        }
        resources.insert(
            format!("{}GlueTable", e.table),
            json!({"Type": "AWS::Glue::Table", "Properties": {"TableInput": {
                "Name": glue_name(e.table),
                "Parameters": params,
                "PartitionKeys": cols(e.partitions),
                "StorageDescriptor": {"Columns": cols(e.columns)},
            }}}),
        );
        if keys::COMPACTED_TABLES.contains(&e.table) {
            let all = [e.columns, e.partitions].concat();
            let presto: Vec<Value> = all
                .iter()
                .map(|c| json!({"name": c.name, "type": presto_type(c.athena_type)}))
                .collect();
            let definition = json!({
                "originalSql": view_sql(&e),
                "catalog": "awsdatacatalog",
                "schema": "${GlueDatabase}",
                "columns": presto,
            });
            resources.insert(
                format!("{}View", e.table),
                json!({"Type": "AWS::Glue::Table", "Properties": {"TableInput": {
                    "Name": e.table,
                    "TableType": "VIRTUAL_VIEW",
                    "Parameters": {"presto_view": "true"},
                    "ViewOriginalText": {"Fn::Join": ["", [
                        "/* Presto View: ",
                        {"Fn::Base64": {"Fn::Sub": definition.to_string()}},
                        " */",
                    ]]},
                    "StorageDescriptor": {"Columns": cols(&all)},
                }}}),
            );
        }
    }
    for (id, rate) in [
        ("SnapshotFunction", "rate(1 minute)"),
        ("MaintenanceFunction", "rate(5 minutes)"),
        ("DiscoveryFunction", "rate(1 minute)"),
    ] {
        resources.insert(
            id.to_string(),
            json!({"Type": "AWS::Serverless::Function", "Properties": {"Events": {
                "Tick": {"Type": "Schedule", "Properties": {"Schedule": rate}},
                "Queue": {"Type": "SQS", "Properties": {}},
            }}}),
        );
    }
    let mut mapping = serde_json::Map::new();
    for s in TIERS {
        mapping.insert(
            s.tier.to_string(),
            json!({
                "IntervalSeconds": s.interval_s,
                "TicksPerHour": 3600 / s.interval_s,
                "OrderBook": s.order_book.to_string(),
                "WebSocket": s.websocket.to_string(),
                "AlarmPeriodSeconds": s.interval_s.max(300),
            }),
        );
    }
    json!({"Resources": resources, "Mappings": {"TierTable": mapping}})
}

/// One way to make a template drift from the code.
type Change<T> = fn(&mut T);

fn all_problems(t: &Value, tiers: &[TierSpec]) -> Vec<String> {
    let mut p: Vec<String> = expected_tables()
        .iter()
        .flat_map(|e| glue_problems(t, e))
        .collect();
    p.extend(
        expected_tables()
            .iter()
            .filter(|e| keys::COMPACTED_TABLES.contains(&e.table))
            .flat_map(|e| view_problems(t, e)),
    );
    p.extend(schedule_problems(t, tiers));
    p.extend(mapping_problems(t, tiers));
    p
}

#[test]
fn given_a_template_built_from_the_code_then_no_check_complains() {
    let problems = all_problems(&template_from_code(), &TIERS);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn given_a_drifted_glue_column_then_the_check_names_it() {
    let cols = "/Resources/snapshotsGlueTable/Properties/TableInput/StorageDescriptor/Columns";
    let changes: [(&str, Change<Vec<Value>>); 4] = [
        ("a type", |c| c[5]["Type"] = json!("double")),
        ("a missing column", |c| {
            c.pop();
        }),
        ("an extra column", |c| {
            c.push(json!({"Name": "extra", "Type": "int"}))
        }),
        ("two columns swapped", |c| c.swap(0, 1)),
    ];
    for (what, change) in changes {
        let mut t = template_from_code();
        let c = t.pointer_mut(cols).unwrap().as_array_mut().unwrap();
        change(c);
        let problems = all_problems(&t, &TIERS);
        assert!(
            problems.iter().any(|p| p.starts_with("snapshots: ")),
            "{what} was not reported: {problems:?}"
        );
    }
}

#[test]
fn given_a_drifted_view_then_the_check_names_it() {
    let view = "/Resources/tradesView/Properties/TableInput";
    fn definition(i: &Value) -> Value {
        let text = i["ViewOriginalText"]["Fn::Join"][1][1]["Fn::Base64"]["Fn::Sub"]
            .as_str()
            .unwrap()
            .to_string();
        serde_json::from_str(&text).unwrap()
    }
    fn set(i: &mut Value, d: Value) {
        i["ViewOriginalText"]["Fn::Join"][1][1]["Fn::Base64"]["Fn::Sub"] = json!(d.to_string());
    }
    let changes: [(&str, Change<Value>); 5] = [
        ("a column the view lacks", |i| {
            i["StorageDescriptor"]["Columns"]
                .as_array_mut()
                .unwrap()
                .pop();
        }),
        ("a Presto type", |i| {
            let mut d = definition(i);
            d["columns"][0]["type"] = json!("string");
            set(i, d);
        }),
        ("the rule left out", |i| {
            let mut d = definition(i);
            d["originalSql"] = json!("SELECT * FROM trades_files");
            set(i, d);
        }),
        ("a plain table instead of a view", |i| {
            i["TableType"] = json!("EXTERNAL_TABLE");
        }),
        ("no view at all", |i| {
            i["Name"] = json!("trades_view");
        }),
    ];
    for (what, change) in changes {
        let mut t = template_from_code();
        change(t.pointer_mut(view).unwrap());
        let problems = all_problems(&t, &TIERS);
        assert!(
            problems.iter().any(|p| p.starts_with("trades: ")),
            "{what} was not reported: {problems:?}"
        );
    }
    assert_eq!(
        presto_type("array<struct<price:decimal(18,6),size:decimal(18,6)>>"),
        "array(row(price decimal(18,6), size decimal(18,6)))"
    );
}

#[test]
fn given_drifted_partitions_or_projection_then_the_check_names_them() {
    let input = "/Resources/orderbooksGlueTable/Properties/TableInput";
    let changes: [(&str, Change<Value>); 4] = [
        ("a partition key type", |i| {
            i["PartitionKeys"][0]["Type"] = json!("string")
        }),
        ("the tier range", |i| {
            i["Parameters"]["projection.tier.range"] = json!("0,4")
        }),
        ("the dt projection format", |i| {
            i["Parameters"]["projection.dt.format"] = json!("yyyy/MM/dd")
        }),
        ("the key layout", |i| {
            i["Parameters"]["storage.location.template"] =
                json!({"Fn::Sub": "s3://${DataBucket}/orderbooks/dt=${!dt}/tier=${!tier}/"})
        }),
    ];
    for (what, change) in changes {
        let mut t = template_from_code();
        change(t.pointer_mut(input).unwrap());
        let problems = all_problems(&t, &TIERS);
        assert!(
            problems.iter().any(|p| p.starts_with("orderbooks: ")),
            "{what} was not reported: {problems:?}"
        );
    }
}

#[test]
fn given_a_writer_column_the_template_lacks_then_the_check_names_it() {
    // The other side moving: the writer gains a column the template does not declare.
    static MORE: OnceLock<Vec<Column>> = OnceLock::new();
    let more = MORE.get_or_init(|| {
        let mut c = market_columns().to_vec();
        c.push(Column {
            name: "settled_on_chain_at",
            athena_type: "timestamp",
        });
        c
    });
    let e = Expected {
        table: "markets",
        columns: more,
        partitions: partition_columns("markets"),
        tier_range: None,
    };
    let problems = glue_problems(&template_from_code(), &e);
    assert!(
        problems.iter().any(|p| p.contains("settled_on_chain_at")),
        "{problems:?}"
    );
}

/// A training-set query that agrees with the export, built from [`training_columns`].
fn training_query_from_code() -> String {
    let items: Vec<String> = training_columns()
        .iter()
        .map(|c| format!("x.{}", c.name))
        .collect();
    format!(
        "UNLOAD (SELECT {} FROM (SELECT 1) x) TO '{TRAINING_PREFIX}RUN_ID/' \
         WITH (format = 'PARQUET', compression = 'SNAPPY')",
        items.join(", ")
    )
}

/// A template holding only the training-set query `sql`.
fn training_template(sql: &str) -> Value {
    json!({"Resources": {TRAINING_QUERY: {"Type": "AWS::Athena::NamedQuery", "Properties": {
        "Database": {"Ref": "GlueDatabase"},
        "WorkGroup": {"Ref": "AthenaWorkGroup"},
        "Description": "Replace RUN_ID with a new name first.",
        "QueryString": {"Fn::Sub": sql},
    }}}})
}

#[test]
fn given_a_drifted_training_query_then_the_check_names_it() {
    let sql = training_query_from_code();
    assert_eq!(
        training_query_problems(&training_template(&sql)),
        Vec::<String>::new()
    );
    // Comments and parentheses inside the list change nothing.
    let commented = sql.replace(
        "x.tier,",
        "-- tier, (the partition), as smallint\n CAST(x.tier AS smallint) AS tier,",
    );
    assert_eq!(
        training_query_problems(&training_template(&commented)),
        Vec::<String>::new()
    );
    let changes: [(&str, &str, &str); 8] = [
        ("a label dropped", ", x.hours_to_resolution", ""),
        (
            "two columns swapped",
            "x.snapshot_ts, x.fetched_at",
            "x.fetched_at, x.snapshot_ts",
        ),
        (
            "a label renamed",
            "x.first_outcome_won",
            "x.first_outcome_won AS label_yes",
        ),
        (
            "an expression without alias",
            "x.tier,",
            "CAST(x.tier AS smallint),",
        ),
        ("a star for the snapshot columns", "x.snapshot_ts,", "x.*,"),
        (
            "another folder",
            "exports/training_set/RUN_ID/",
            "athena-results/",
        ),
        ("another format", "'PARQUET'", "'JSON'"),
        ("no compression", ", compression = 'SNAPPY'", ""),
    ];
    for (what, from, to) in changes {
        assert!(sql.contains(from), "{what}: {from:?} is not in the query");
        let problems = training_query_problems(&training_template(&sql.replacen(from, to, 1)));
        assert!(
            problems.iter().any(|p| p.starts_with("TrainingSetQuery: ")),
            "{what} was not reported: {problems:?}"
        );
    }
    let mut t = training_template(&sql);
    t["Resources"][TRAINING_QUERY]["Properties"]["Description"] = json!("The training set.");
    let problems = training_query_problems(&t);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("does not say to replace RUN_ID")),
        "{problems:?}"
    );
}

#[test]
fn given_a_drifted_schedule_then_the_check_names_the_function() {
    for (id, bad) in [
        ("SnapshotFunction", "rate(2 minutes)"),
        ("MaintenanceFunction", "rate(10 minutes)"),
        ("DiscoveryFunction", "cron(0 * * * ? *)"),
    ] {
        let mut t = template_from_code();
        t["Resources"][id]["Properties"]["Events"]["Tick"]["Properties"]["Schedule"] = json!(bad);
        let problems = schedule_problems(&t, &TIERS);
        assert!(
            problems.iter().any(|p| p.starts_with(id)),
            "{id} {bad}: {problems:?}"
        );
    }
}

#[test]
fn given_a_tier_the_minute_dispatcher_cannot_serve_then_the_check_names_it() {
    // The tier table moving: a 20 s or a 90 s tier cannot be reached from a once-a-minute
    // dispatcher with delays of 0/15/30/45 s.
    for interval_s in [20, 90, 7] {
        let mut tiers = TIERS;
        tiers[4].interval_s = interval_s;
        let problems = schedule_problems(&template_from_code(), &tiers);
        assert!(
            problems.iter().any(|p| p.starts_with("T4: a tick every")),
            "{interval_s} s: {problems:?}"
        );
    }
    assert!(servable(60, 15) && servable(60, 30) && servable(60, 60) && servable(60, 3600));
    assert!(
        !servable(300, 60),
        "a 5-minute dispatcher cannot start minute ticks"
    );
    assert_eq!(rate_seconds("rate(1 minute)"), Some(60));
    assert_eq!(rate_seconds("rate(1 minutes)"), None);
    assert_eq!(rate_seconds("rate(5 minutes)"), Some(300));
}

#[test]
fn given_a_tier_table_change_then_the_mapping_check_names_the_value() {
    let mut tiers = TIERS;
    tiers[3].interval_s = 20;
    tiers[1].order_book = true;
    let problems = mapping_problems(&template_from_code(), &tiers);
    for want in [
        "TierTable.T3.IntervalSeconds",
        "TierTable.T3.TicksPerHour",
        "TierTable.T1.OrderBook",
    ] {
        assert!(
            problems.iter().any(|p| p.starts_with(want)),
            "{want}: {problems:?}"
        );
    }
    let mut t = template_from_code();
    t["Mappings"]["TierTable"]["T2"]["WebSocket"] = json!("false");
    let problems = mapping_problems(&t, &TIERS);
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("TierTable.T2.WebSocket")),
        "{problems:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// The dashboard body
// ---------------------------------------------------------------------------------------------

/// Replaces each `${name}` in `text` with `vars(name)`, or a placeholder name (`X`) when it
/// gives none: a `Ref` or `GetAtt` is a name in a JSON string.
fn substitute(text: &str, vars: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let Some(len) = rest[start..].find('}') else {
            break;
        };
        out.push_str(&rest[..start]);
        let name = &rest[start + 2..start + len];
        out.push_str(&vars(name).unwrap_or_else(|| "X".into()));
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    out
}

/// A `!Sub` variable's text with the branch `pick` (0: true, 1: false) of every `!If`.
fn variable_text(v: &Value, pick: usize) -> String {
    if let Some(branches) = v.get("Fn::If") {
        return variable_text(&branches[1 + pick], pick);
    }
    match v {
        Value::String(s) => substitute(s, &|_| None),
        v if v.get("Fn::Sub").is_some() => substitute(&sub_text(v), &|_| None),
        _ => "X".into(),
    }
}

/// What is wrong with the dashboard's body, with its conditional variables both ways (a stack
/// with and without the feed task): it must be JSON, and its widgets must fit the 24 columns
/// of the grid without overlapping (CloudWatch moves an overlapping widget elsewhere, silently);
/// a Logs Insights widget must read log groups only through `SOURCE`.
fn dashboard_problems(t: &Value) -> Vec<String> {
    let sub = &t["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"];
    let (Some(body), vars) = (sub[0].as_str(), &sub[1]) else {
        return vec!["Dashboard.DashboardBody is not a !Sub [body, variables]".into()];
    };
    let mut problems = Vec::new();
    for (pick, stack) in [(0, "with the feed task"), (1, "without it")] {
        let text = substitute(body, &|name| vars.get(name).map(|v| variable_text(v, pick)));
        let doc: Value = match serde_json::from_str(&text) {
            Ok(doc) => doc,
            Err(e) => {
                problems.push(format!("Dashboard ({stack}): not JSON: {e}"));
                continue;
            }
        };
        let mut taken = std::collections::HashMap::new();
        for (i, w) in doc["widgets"].as_array().into_iter().flatten().enumerate() {
            let title = w["properties"]["title"].as_str().unwrap_or("(text)");
            let [x, y, width, height] =
                ["x", "y", "width", "height"].map(|k| w[k].as_u64().unwrap_or(u64::MAX));
            if x.saturating_add(width) > 24 || height == u64::MAX {
                problems.push(format!("Dashboard widget {i} {title:?}: outside the grid"));
                continue;
            }
            for cell in (x..x + width).flat_map(|c| (y..y + height).map(move |r| (c, r))) {
                if let Some(other) = taken.insert(cell, title) {
                    problems.push(format!(
                        "Dashboard widget {i} {title:?} ({stack}): overlaps {other:?} at {cell:?}"
                    ));
                    break;
                }
            }
            if w["type"] == "log" {
                let query = w["properties"]["query"].as_str().unwrap_or_default();
                if !query.starts_with("SOURCE '") {
                    problems.push(format!("Dashboard widget {i} {title:?}: no SOURCE"));
                }
            }
        }
    }
    problems
}

#[test]
fn given_template_yaml_then_the_dashboard_is_json_whose_widgets_fit_the_grid() {
    let Some(t) = template() else { return };
    let problems = dashboard_problems(t);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn given_a_broken_or_overlapping_dashboard_then_the_check_names_it() {
    let Some(t) = template() else { return };
    fn body(t: &mut Value) -> &mut Value {
        &mut t["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"][0]
    }
    // A widget moved onto the first one.
    let mut moved = t.clone();
    let text = body(&mut moved)
        .as_str()
        .unwrap()
        .replacen("\"y\": 3,", "\"y\": 0,", 1);
    *body(&mut moved) = json!(text);
    let problems = dashboard_problems(&moved);
    assert!(
        problems.iter().any(|p| p.contains("overlaps")),
        "{problems:?}"
    );
    // A comma lost.
    let mut broken = t.clone();
    let text = body(&mut broken).as_str().unwrap().replacen("}},", "}}", 1);
    *body(&mut broken) = json!(text);
    let problems = dashboard_problems(&broken);
    assert!(
        problems.iter().any(|p| p.contains("not JSON")),
        "{problems:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// The AWS adapter's tables, environment and Latest objects (feature `aws`)
// ---------------------------------------------------------------------------------------------

/// template.yaml against `polytape_store::aws`: the DynamoDB tables it declares are the ones
/// the adapter uses (Markets with exactly the `active_by_end` index, Ops; no Latest table),
/// every function gets the names `AwsNames::from_env` reads, every index ARN in a policy is
/// that index, each role may put and get the objects (`polytape_store::keys`) its handlers
/// do, and a role that reads an object that may not exist yet (a Latest object under
/// `latest/`, the result counts under `status/`) may also list the bucket (without it S3
/// answers a missing object with 403, not 404).
#[cfg(feature = "aws")]
mod aws {
    use super::*;
    use polytape_core::{TickId, Tier, Ts};
    use polytape_store::aws::{
        ACTIVE_BY_END_INDEX, BUCKET_VAR, END_DATE_ATTR, LIVE_ATTR, LIVE_QUEUE_URL_VAR,
        MARKETS_TABLE_VAR, OPS_TABLE_VAR, TICKS_QUEUE_URL_VAR,
    };
    use polytape_store::keys;

    /// The ARN of the data bucket's object `key`, as a policy's `!Sub` writes it.
    fn object(key: &str) -> String {
        format!("${{DataBucket.Arn}}/{key}")
    }

    /// Whether a policy resource (`…/latest/*` or an exact ARN) covers the object ARN `arn`.
    fn covers(resource: &str, arn: &str) -> bool {
        match resource.strip_suffix('*') {
            Some(prefix) => arn.starts_with(prefix),
            None => resource == arn,
        }
    }

    /// Objects a reader may ask for before anything wrote them: a tier's Latest object before
    /// its first tick, the result counts before the first resolutions run.
    fn maybe_missing() -> [String; 2] {
        [object(&keys::latest(Tier::T0)), object(keys::RESULT_COUNTS)]
    }

    /// The text of every resource of one statement: `!Sub` strings, `!GetAtt X.Arn` as
    /// `X.Arn`, plain strings.
    fn resources_of(statement: &Value) -> Vec<String> {
        let r = &statement["Resource"];
        let list = r.as_array().cloned().unwrap_or_else(|| vec![r.clone()]);
        list.iter()
            .map(|v| match v["Fn::GetAtt"].as_array() {
                Some(a) => a.iter().map(text).collect::<Vec<_>>().join("."),
                None => v["Fn::GetAtt"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| sub_text(v)),
            })
            .collect()
    }

    fn actions_of(statement: &Value) -> Vec<String> {
        let a = &statement["Action"];
        a.as_array()
            .cloned()
            .unwrap_or_else(|| vec![a.clone()])
            .iter()
            .map(text)
            .collect()
    }

    /// Every (role, statement) of the inline policies of the template's IAM roles.
    fn statements(t: &Value) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        for (id, r) in t["Resources"].as_object().into_iter().flatten() {
            if r["Type"] != "AWS::IAM::Role" {
                continue;
            }
            for p in r["Properties"]["Policies"].as_array().into_iter().flatten() {
                for s in p["PolicyDocument"]["Statement"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    out.push((id.clone(), s.clone()));
                }
            }
        }
        out
    }

    /// Every way the template disagrees with the AWS adapter.
    pub(super) fn aws_problems(t: &Value) -> Vec<String> {
        let mut problems = Vec::new();
        let resources = t["Resources"].as_object().cloned().unwrap_or_default();
        let mut tables: Vec<&String> = resources
            .iter()
            .filter(|(_, r)| r["Type"] == "AWS::DynamoDB::Table")
            .map(|(id, _)| id)
            .collect();
        tables.sort();
        if tables != ["MarketsTable", "OpsTable"] {
            problems.push(format!(
                "DynamoDB tables {tables:?}, the adapter uses [MarketsTable, OpsTable]"
            ));
        }
        let markets = &t["Resources"]["MarketsTable"]["Properties"];
        let want_index = json!([{
            "IndexName": ACTIVE_BY_END_INDEX,
            "KeySchema": [
                {"AttributeName": LIVE_ATTR, "KeyType": "HASH"},
                {"AttributeName": END_DATE_ATTR, "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        }]);
        if markets["GlobalSecondaryIndexes"] != want_index {
            problems.push(format!(
                "MarketsTable: indexes {}, the adapter queries {want_index}",
                markets["GlobalSecondaryIndexes"]
            ));
        }
        let mut attrs: Vec<(String, String)> = markets["AttributeDefinitions"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| (text(&a["AttributeName"]), text(&a["AttributeType"])))
            .collect();
        attrs.sort();
        let mut want_attrs = vec![
            ("condition_id".to_string(), "S".to_string()),
            (END_DATE_ATTR.to_string(), "N".to_string()),
            (LIVE_ATTR.to_string(), "S".to_string()),
        ];
        want_attrs.sort();
        if attrs != want_attrs {
            problems.push(format!(
                "MarketsTable: attribute definitions {attrs:?}, expected {want_attrs:?}"
            ));
        }

        let env = t["Globals"]["Function"]["Environment"]["Variables"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let read = [
            MARKETS_TABLE_VAR,
            OPS_TABLE_VAR,
            BUCKET_VAR,
            TICKS_QUEUE_URL_VAR,
        ];
        for var in read {
            if !env.contains_key(var) {
                problems.push(format!(
                    "Globals: {var} is not set; AwsNames::from_env needs it"
                ));
            }
        }
        for var in env.keys() {
            if var.ends_with("_TABLE") && !read.contains(&var.as_str()) {
                problems.push(format!(
                    "Globals: {var} names a table the adapter does not use"
                ));
            }
        }

        let latest = format!("${{DataBucket.Arn}}/{}/*", keys::LATEST);
        let all = statements(t);
        for (role, s) in &all {
            let sid = text(&s["Sid"]);
            for r in resources_of(s) {
                if r.contains("/index/") && !r.ends_with(&format!("/index/{ACTIVE_BY_END_INDEX}")) {
                    problems.push(format!("{role}.{sid}: {r} is not the adapter's index"));
                }
                if r.contains("/latest") && r != latest {
                    problems.push(format!(
                        "{role}.{sid}: {r}, the Latest objects are {latest}"
                    ));
                }
            }
            let gets = actions_of(s).iter().any(|a| a == "s3:GetObject");
            let missing = maybe_missing();
            let reads_missing = resources_of(s)
                .into_iter()
                .find(|r| gets && missing.iter().any(|m| covers(r, m)));
            let lists = all.iter().any(|(other, o)| {
                other == role
                    && actions_of(o).iter().any(|a| a == "s3:ListBucket")
                    && resources_of(o).iter().any(|r| r == "DataBucket.Arn")
            });
            if let Some(r) = reads_missing.filter(|_| !lists) {
                problems.push(format!(
                    "{role}: reads {r} without s3:ListBucket on the bucket (an object not \
                     written yet would be 403, not 404)"
                ));
            }
        }
        problems
    }

    /// Whether `role` is granted `action` on `resource` (as [`resources_of`] renders it).
    fn grants(t: &Value, role: &str, action: &str, resource: &str) -> bool {
        statements(t).iter().any(|(r, s)| {
            r == role
                && actions_of(s).iter().any(|a| a == action)
                && resources_of(s).iter().any(|x| x == resource)
        })
    }

    #[test]
    fn given_template_yaml_then_each_role_grants_the_dynamodb_calls_its_handlers_make() {
        let Some(t) = template() else { return };
        let ops = "OpsTable.Arn";
        let markets = "MarketsTable.Arn";
        let index = format!("${{MarketsTable.Arn}}/index/{ACTIVE_BY_END_INDEX}");
        // Each handler's calls through the ports (crates/store/src/aws): a missing grant shows
        // only on a real deployment, never on moto, which enforces no IAM.
        let needs: [(&str, &[(&str, &str)]); 4] = [
            // snapshot_tick: markets_due, coverage (a late tick reads its coverage first),
            // task run and state; the dispatcher's run and state.
            (
                "SnapshotRole",
                &[
                    ("dynamodb:Query", index.as_str()),
                    ("dynamodb:Query", ops),
                    ("dynamodb:PutItem", ops),
                    ("dynamodb:GetItem", ops),
                ],
            ),
            // run_if_due: task state, lease; discover: active_markets, versioned puts,
            // get_market after a conflict, transitions.
            (
                "DiscoveryRole",
                &[
                    ("dynamodb:GetItem", ops),
                    ("dynamodb:UpdateItem", ops),
                    ("dynamodb:PutItem", ops),
                    ("dynamodb:BatchWriteItem", ops),
                    ("dynamodb:Query", index.as_str()),
                    ("dynamodb:PutItem", markets),
                    ("dynamodb:GetItem", markets),
                ],
            ),
            (
                "MaintenanceRole",
                &[
                    ("dynamodb:Query", index.as_str()),
                    ("dynamodb:PutItem", markets),
                    ("dynamodb:GetItem", markets),
                    ("dynamodb:Scan", markets),
                    ("dynamodb:PutItem", ops),
                    ("dynamodb:GetItem", ops),
                    ("dynamodb:BatchWriteItem", ops),
                ],
            ),
            // The status API: task states, runs, coverage, transitions (Queries), a task's
            // state and the heartbeat round (GetItem); count_due and the active and awaiting markets (index);
            // one market (GetItem), every market (Scan: /api/markets?state=all, state.markets).
            (
                "StatusRole",
                &[
                    ("dynamodb:Query", ops),
                    ("dynamodb:GetItem", ops),
                    ("dynamodb:Query", index.as_str()),
                    ("dynamodb:GetItem", markets),
                    ("dynamodb:Scan", markets),
                ],
            ),
        ];
        let missing: Vec<String> = needs
            .iter()
            .flat_map(|(role, calls)| {
                calls
                    .iter()
                    .filter(|(a, r)| !grants(t, role, a, r))
                    .map(move |(a, r)| format!("{role} lacks {a} on {r}"))
            })
            .collect();
        assert!(missing.is_empty(), "{}", missing.join("\n"));
    }

    /// Whether `role` may make `action` on the object ARN `arn` (a prefix grant covers it).
    fn grants_object(t: &Value, role: &str, action: &str, arn: &str) -> bool {
        statements(t).iter().any(|(r, s)| {
            r == role
                && actions_of(s).iter().any(|a| a == action)
                && resources_of(s).iter().any(|x| covers(x, arn))
        })
    }

    #[test]
    fn given_template_yaml_then_each_role_may_put_and_get_the_objects_its_handlers_do() {
        let Some(t) = template() else { return };
        let at: Ts = "2026-11-20T22:30:15.123Z".parse().expect("a time");
        let tick = TickId {
            tier: Tier::T2,
            tick_ts: at,
        };
        let (get, put) = ("s3:GetObject", "s3:PutObject");
        // A resolution's key needs a whole Resolution; any market's file under its day will do.
        let resolution = format!(
            "{}dt=2026-11-20/0xabc.parquet",
            keys::table_prefix(keys::RESOLUTIONS)
        );
        // A T4 tick's file, which the tier's writing tick reads back (collector::latest).
        let t4_file = keys::snapshots(&TickId {
            tier: Tier::T4,
            tick_ts: "2026-11-20T22:30:15Z".parse().expect("a time"),
        });
        let needs: [(&str, Vec<(&str, String)>); 4] = [
            // a tick's files and its tier's Latest object (read, then a conditional put), and
            // the tier's earlier tick files a T3/T4 writing tick reads back
            (
                "SnapshotRole",
                vec![
                    (put, keys::snapshots(&tick)),
                    (put, keys::orderbooks(&tick)),
                    (get, keys::latest(Tier::T2)),
                    (put, keys::latest(Tier::T2)),
                    (get, t4_file.clone()),
                ],
            ),
            // the transitions of a discovery run
            (
                "DiscoveryRole",
                vec![(put, keys::transitions("discovery", at))],
            ),
            // re-tier's transitions and the end dates it reads and rewrites, the markets
            // dimension, the resolutions duty's files and the result counts it reads and
            // rewrites; compaction's reads, its compacted files
            // and manifests, and its deletes, in every compacted table
            (
                "MaintenanceRole",
                [
                    (put, keys::transitions("retier", at)),
                    (put, keys::transitions("resolutions", at)),
                    (put, keys::markets(at.date_naive())),
                    (put, resolution),
                    (get, keys::RESULT_COUNTS.to_string()),
                    (put, keys::RESULT_COUNTS.to_string()),
                    (get, keys::END_DATES.to_string()),
                    (put, keys::END_DATES.to_string()),
                ]
                .into_iter()
                .chain(keys::COMPACTED_TABLES.iter().flat_map(|table| {
                    let tier =
                        matches!(*table, keys::SNAPSHOTS | keys::ORDERBOOKS).then_some(Tier::T4);
                    let part = keys::partition(table, tier, at.date_naive());
                    let source = format!("{part}20261120T22-1-0-1.parquet");
                    [
                        (get, source.clone()),
                        ("s3:DeleteObject", source),
                        (put, keys::compacted(&part, "20261120T22")),
                        (get, keys::manifest(&part)),
                        (put, keys::manifest(&part)),
                    ]
                }))
                .collect(),
            ),
            // the status API: the Latest objects, the result counts and re-tier's end dates
            // (/api/stats, /api/websocket), and every
            // Parquet table read back (a market's snapshots, gaps, completeness, events,
            // guards, the table browser)
            (
                "StatusRole",
                vec![
                    (get, keys::latest(Tier::T0)),
                    (get, t4_file),
                    (get, keys::RESULT_COUNTS.to_string()),
                    (get, keys::END_DATES.to_string()),
                    (get, keys::snapshots(&tick)),
                    (get, keys::orderbooks(&tick)),
                    (get, keys::markets(at.date_naive())),
                    (get, keys::transitions("retier", at)),
                    (
                        get,
                        format!(
                            "{}dt=2026-11-20/0xabc.parquet",
                            keys::table_prefix(keys::RESOLUTIONS)
                        ),
                    ),
                    (get, keys::live(keys::TRADES, at, 1, 0, 1)),
                    (get, keys::live(keys::WHALE_EVENTS, at, 1, 0, 1)),
                    (get, keys::live(keys::RAW_WS, at, 1, 0, 1)),
                    (get, keys::paper(keys::SIGNALS, at)),
                    (get, keys::paper(keys::FILLS, at)),
                    (get, keys::paper(keys::POSITIONS, at)),
                    // the paper executor's state, overrides and configuration
                    // (/api/executor/*, /api/strategies; collector::executor's keys)
                    (get, "executor/state.json".to_string()),
                    (get, "executor/strategies.json".to_string()),
                    (get, "executor/config.yaml".to_string()),
                ],
            ),
        ];
        let missing: Vec<String> = needs
            .iter()
            .flat_map(|(role, calls)| {
                calls
                    .iter()
                    .filter(|(a, key)| !grants_object(t, role, a, &object(key)))
                    .map(move |(a, key)| format!("{role} lacks {a} on {key}"))
            })
            .collect();
        assert!(missing.is_empty(), "{}", missing.join("\n"));
        // Compaction lists partitions; only it may delete.
        assert!(statements(t).iter().any(|(r, st)| r == "MaintenanceRole"
            && actions_of(st).iter().any(|a| a == "s3:ListBucket")
            && resources_of(st).iter().any(|x| x == "DataBucket.Arn")));
        for role in ["SnapshotRole", "DiscoveryRole", "StatusRole", "TradesRole"] {
            assert!(
                !grants_object(t, role, "s3:DeleteObject", &object("snapshots/x")),
                "{role} may delete"
            );
        }
        // The status API only reads: it may write no object.
        assert!(!grants_object(
            t,
            "StatusRole",
            put,
            &object(keys::RESULT_COUNTS)
        ));
        // …nor read the exports or Athena's results.
        for key in [
            "exports/training_set/x/part.parquet",
            "athena-results/x.csv",
        ] {
            assert!(!grants_object(t, "StatusRole", get, &object(key)), "{key}");
        }
    }

    #[test]
    fn given_template_yaml_then_the_status_api_is_throttled_and_its_authorization_is_a_parameter() {
        let Some(t) = template() else { return };
        let r = &t["Resources"];
        assert_eq!(
            r["StatusApiRoute"]["Properties"]["AuthorizationType"],
            json!({"Fn::If": ["StatusIamAuth", "AWS_IAM", "NONE"]})
        );
        assert_eq!(r["StatusApiRoute"]["Properties"]["RouteKey"], "$default");
        assert_eq!(
            t["Conditions"]["StatusIamAuth"],
            json!({"Fn::Equals": [{"Ref": "StatusApiAuth"}, "AWS_IAM"]})
        );
        assert_eq!(
            t["Parameters"]["StatusApiAuth"]["AllowedValues"],
            json!(["NONE", "AWS_IAM"])
        );
        let stage = &r["StatusApiStage"]["Properties"];
        assert_eq!(stage["StageName"], "$default");
        let limits = &stage["DefaultRouteSettings"];
        assert!(
            limits["ThrottlingRateLimit"]
                .as_f64()
                .is_some_and(|l| l > 0.0)
                && limits["ThrottlingBurstLimit"]
                    .as_f64()
                    .is_some_and(|l| l > 0.0),
            "the stage is throttled: {limits}"
        );
        assert_eq!(
            r["StatusApiIntegration"]["Properties"]["PayloadFormatVersion"], "2.0",
            "lambda_http reads the HTTP API's payload v2"
        );
    }

    /// A template that agrees with the adapter.
    fn aws_template_from_code() -> Value {
        json!({
            "Globals": {"Function": {"Environment": {"Variables": {
                MARKETS_TABLE_VAR: {"Ref": "MarketsTable"},
                OPS_TABLE_VAR: {"Ref": "OpsTable"},
                BUCKET_VAR: {"Ref": "DataBucket"},
                TICKS_QUEUE_URL_VAR: {"Ref": "TicksQueue"},
                "POLYTAPE_MIN_VOLUME_24H": {"Ref": "MinVolume24h"},
            }}}},
            "Resources": {
                "MarketsTable": {"Type": "AWS::DynamoDB::Table", "Properties": {
                    "AttributeDefinitions": [
                        {"AttributeName": "condition_id", "AttributeType": "S"},
                        {"AttributeName": LIVE_ATTR, "AttributeType": "S"},
                        {"AttributeName": END_DATE_ATTR, "AttributeType": "N"},
                    ],
                    "GlobalSecondaryIndexes": [{
                        "IndexName": ACTIVE_BY_END_INDEX,
                        "KeySchema": [
                            {"AttributeName": LIVE_ATTR, "KeyType": "HASH"},
                            {"AttributeName": END_DATE_ATTR, "KeyType": "RANGE"},
                        ],
                        "Projection": {"ProjectionType": "ALL"},
                    }],
                }},
                "OpsTable": {"Type": "AWS::DynamoDB::Table", "Properties": {}},
                "SnapshotRole": {"Type": "AWS::IAM::Role", "Properties": {"Policies": [{
                    "PolicyDocument": {"Statement": [
                        {"Sid": "Index", "Action": ["dynamodb:Query"],
                         "Resource": {"Fn::Sub": format!("${{MarketsTable.Arn}}/index/{ACTIVE_BY_END_INDEX}")}},
                        {"Sid": "Latest", "Action": ["s3:GetObject", "s3:PutObject"],
                         "Resource": {"Fn::Sub": "${DataBucket.Arn}/latest/*"}},
                        {"Sid": "List", "Action": ["s3:ListBucket"],
                         "Resource": {"Fn::GetAtt": ["DataBucket", "Arn"]}},
                    ]},
                }]}},
            },
        })
    }

    #[test]
    fn given_template_yaml_then_its_tables_environment_and_latest_grants_match_the_aws_adapter() {
        let Some(t) = template() else { return };
        let problems = aws_problems(t);
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    #[test]
    fn given_a_drifted_table_index_variable_or_grant_then_the_check_names_it() {
        assert_eq!(
            aws_problems(&aws_template_from_code()),
            Vec::<String>::new()
        );
        let changes: [(&str, &str, Change<Value>); 7] = [
            ("the old index", "MarketsTable: indexes", |t| {
                t["Resources"]["MarketsTable"]["Properties"]["GlobalSecondaryIndexes"][0]
                    ["IndexName"] = json!("by_tier")
            }),
            ("a sort key", "MarketsTable: attribute definitions", |t| {
                t["Resources"]["MarketsTable"]["Properties"]["AttributeDefinitions"][2]
                    ["AttributeType"] = json!("S")
            }),
            ("a Latest table left over", "DynamoDB tables", |t| {
                t["Resources"]["LatestTable"] = json!({"Type": "AWS::DynamoDB::Table"})
            }),
            (
                "its variable left over",
                "Globals: POLYTAPE_LATEST_TABLE",
                |t| {
                    t["Globals"]["Function"]["Environment"]["Variables"]["POLYTAPE_LATEST_TABLE"] =
                        json!({"Ref": "LatestTable"})
                },
            ),
            ("a grant on the old index", "SnapshotRole.Index", |t| {
                t["Resources"]["SnapshotRole"]["Properties"]["Policies"][0]["PolicyDocument"]
                    ["Statement"][0]["Resource"] =
                    json!({"Fn::Sub": "${MarketsTable.Arn}/index/by_tier"})
            }),
            ("Latest without ListBucket", "SnapshotRole: reads", |t| {
                t["Resources"]["SnapshotRole"]["Properties"]["Policies"][0]["PolicyDocument"]
                    ["Statement"]
                    .as_array_mut()
                    .unwrap()
                    .pop();
            }),
            (
                "result counts without ListBucket",
                "MaintenanceRole: reads",
                |t| {
                    t["Resources"]["MaintenanceRole"] = json!({"Type": "AWS::IAM::Role",
                    "Properties": {"Policies": [{"PolicyDocument": {"Statement": [
                        {"Sid": "Status", "Action": ["s3:GetObject", "s3:PutObject"],
                         "Resource": {"Fn::Sub": "${DataBucket.Arn}/status/*"}},
                    ]}}]}})
                },
            ),
        ];
        for (what, want, change) in changes {
            let mut t = aws_template_from_code();
            change(&mut t);
            let problems = aws_problems(&t);
            assert!(
                problems.iter().any(|p| p.starts_with(want)),
                "{what} was not reported as {want:?}: {problems:?}"
            );
        }
    }

    // -----------------------------------------------------------------------------------------
    // The live feed: the trades function on the live queue, the Fargate task
    // -----------------------------------------------------------------------------------------

    /// Every (action, resource) a role's statements grant, sorted.
    fn grants_of(t: &Value, role: &str) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = statements(t)
            .iter()
            .filter(|(r, _)| r == role)
            .flat_map(|(_, s)| {
                let resources = resources_of(s);
                actions_of(s)
                    .into_iter()
                    .flat_map(move |a| resources.clone().into_iter().map(move |r| (a.clone(), r)))
            })
            .collect();
        out.sort();
        out
    }

    fn pairs_of(list: &[(&str, String)]) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = list
            .iter()
            .map(|(a, r)| (a.to_string(), r.clone()))
            .collect();
        out.sort();
        out
    }

    fn num(v: &Value) -> Option<u64> {
        text(v).parse().ok()
    }

    /// Every way the template's live feed resources differ from what the trades function and
    /// the feed task do (see functions/trades, ws-fargate and docs/aws.md):
    /// * the trades function consumes LiveQueue with partial batch responses, in batches with
    ///   a batching window, the queue's visibility at least 6 × the function's timeout + the
    ///   window (a message is never delivered again while a batch holding it may still run:
    ///   `store_batch` relies on it), and the queue redrives to LiveDlq, whose depth alarms at
    ///   the alarm topic;
    /// * the trades role grants exactly: PutObject on the three live tables' prefixes, listing
    ///   the bucket only under those prefixes, the event source's four SQS calls on LiveQueue,
    ///   and its logs;
    /// * the feed task runs on Fargate, ARM64 by default, awsvpc, in a security group with no
    ///   inbound rule and only HTTPS out, with the names its store reads;
    /// * the feed task role grants exactly: Query on the markets index, PutItem of heartbeats
    ///   on Ops (and only their partition), PutObject of live/flow.json, SendMessage on
    ///   LiveQueue.
    pub(super) fn live_problems(t: &Value) -> Vec<String> {
        let mut p = Vec::new();
        let res = &t["Resources"];
        let trades = &res["TradesFunction"]["Properties"];
        let timeout = num(&trades["Timeout"]).unwrap_or(0);
        let queue = &res["LiveQueue"]["Properties"];
        let visibility = num(&queue["VisibilityTimeout"]).unwrap_or(0);
        let window = trades["Events"]
            .as_object()
            .into_iter()
            .flatten()
            .find_map(|(_, e)| num(&e["Properties"]["MaximumBatchingWindowInSeconds"]))
            .unwrap_or(0);
        if timeout == 0 || visibility < 6 * timeout + window {
            p.push(format!(
                "LiveQueue: visibility {visibility} s < 6 × TradesFunction's timeout {timeout} s + its batching window {window} s"
            ));
        }
        let redrive = &queue["RedrivePolicy"];
        if resources_of(&json!({"Resource": redrive["deadLetterTargetArn"]})) != ["LiveDlq.Arn"]
            || !(1..=10).contains(&num(&redrive["maxReceiveCount"]).unwrap_or(0))
        {
            p.push(format!(
                "LiveQueue: redrive {redrive} is not to LiveDlq after 1–10 receives"
            ));
        }
        let sqs: Vec<&Value> = trades["Events"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(_, e)| e)
            .filter(|e| e["Type"] == "SQS")
            .collect();
        match sqs.as_slice() {
            [e] => {
                let e = &e["Properties"];
                if resources_of(&json!({"Resource": e["Queue"]})) != ["LiveQueue.Arn"] {
                    p.push(format!(
                        "TradesFunction: consumes {}, not LiveQueue",
                        e["Queue"]
                    ));
                }
                if e["FunctionResponseTypes"] != json!(["ReportBatchItemFailures"]) {
                    p.push("TradesFunction: no ReportBatchItemFailures (one bad record would retry the batch)".into());
                }
                let batch = num(&e["BatchSize"]).unwrap_or(0);
                let window = num(&e["MaximumBatchingWindowInSeconds"]).unwrap_or(0);
                if !(2..=10_000).contains(&batch) || !(1..=300).contains(&window) {
                    p.push(format!(
                        "TradesFunction: batch size {batch} and window {window} s: expected a batch of 2–10,000 and a window of 1–300 s"
                    ));
                }
            }
            other => p.push(format!(
                "TradesFunction: {} SQS event sources, expected 1",
                other.len()
            )),
        }
        let alarm = &res["LiveDlqAlarm"]["Properties"];
        let on_dlq =
            alarm["Dimensions"][0]["Value"]["Fn::GetAtt"] == json!(["LiveDlq", "QueueName"]);
        if !on_dlq
            || alarm["MetricName"] != "ApproximateNumberOfMessagesVisible"
            || num(&alarm["Threshold"]) != Some(0)
            || alarm["ComparisonOperator"] != "GreaterThanThreshold"
            || !alarm["AlarmActions"].to_string().contains("AlarmTopicArn")
        {
            p.push("LiveDlqAlarm: not LiveDlq depth > 0 to AlarmTopicArn".into());
        }

        let object = |key: &str| format!("${{DataBucket.Arn}}/{key}");
        let want_trades = pairs_of(&[
            ("logs:CreateLogStream", "TradesLogGroup.Arn".into()),
            ("logs:PutLogEvents", "TradesLogGroup.Arn".into()),
            (
                "s3:PutObject",
                object(&format!("{}*", keys::table_prefix(keys::TRADES))),
            ),
            (
                "s3:PutObject",
                object(&format!("{}*", keys::table_prefix(keys::WHALE_EVENTS))),
            ),
            (
                "s3:PutObject",
                object(&format!("{}*", keys::table_prefix(keys::RAW_WS))),
            ),
            // store_batch's listing of what is stored, under the three prefixes only.
            ("s3:ListBucket", "DataBucket.Arn".into()),
            ("sqs:ReceiveMessage", "LiveQueue.Arn".into()),
            ("sqs:DeleteMessage", "LiveQueue.Arn".into()),
            ("sqs:ChangeMessageVisibility", "LiveQueue.Arn".into()),
            ("sqs:GetQueueAttributes", "LiveQueue.Arn".into()),
        ]);
        let got = grants_of(t, "TradesRole");
        if got != want_trades {
            p.push(format!(
                "TradesRole grants {got:?}, expected exactly {want_trades:?}"
            ));
        }
        let live_prefixes: Vec<String> = [keys::TRADES, keys::WHALE_EVENTS, keys::RAW_WS]
            .iter()
            .map(|t| format!("{}*", keys::table_prefix(t)))
            .collect();
        for (role, s) in statements(t) {
            if role == "TradesRole"
                && actions_of(&s).iter().any(|a| a == "s3:ListBucket")
                && s["Condition"]["StringLike"]["s3:prefix"] != json!(live_prefixes)
            {
                p.push(format!(
                    "TradesRole lists the bucket under {}, expected only {live_prefixes:?}",
                    s["Condition"]
                ));
            }
        }
        let want_feed = pairs_of(&[
            (
                "dynamodb:Query",
                format!("${{MarketsTable.Arn}}/index/{ACTIVE_BY_END_INDEX}"),
            ),
            ("dynamodb:PutItem", "OpsTable.Arn".into()),
            ("s3:PutObject", object(keys::LIVE_FLOW)),
            // The raw tape, written by the feed itself (polytape_collector::tape).
            (
                "s3:PutObject",
                object(&format!("{}*", keys::table_prefix(keys::RAW_WS))),
            ),
            ("sqs:SendMessage", "LiveQueue.Arn".into()),
        ]);
        let got = grants_of(t, "FeedTaskRole");
        if got != want_feed {
            p.push(format!(
                "FeedTaskRole grants {got:?}, expected exactly {want_feed:?}"
            ));
        }
        let heartbeats_only = statements(t).iter().any(|(r, s)| {
            r == "FeedTaskRole"
                && actions_of(s) == ["dynamodb:PutItem"]
                && s["Condition"]["ForAllValues:StringEquals"]["dynamodb:LeadingKeys"]
                    == json!(["heartbeat"])
        });
        if !heartbeats_only {
            p.push("FeedTaskRole: PutItem on Ops is not limited to the heartbeat partition".into());
        }

        let sg = &res["FeedSecurityGroup"]["Properties"];
        if sg.get("SecurityGroupIngress").is_some() {
            p.push(
                "FeedSecurityGroup: has ingress rules; the task takes no inbound traffic".into(),
            );
        }
        let ingress_resources: Vec<&String> = res
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(_, r)| r["Type"] == "AWS::EC2::SecurityGroupIngress")
            .map(|(id, _)| id)
            .collect();
        if !ingress_resources.is_empty() {
            p.push(format!(
                "ingress rules {ingress_resources:?}: the feed task takes no inbound traffic"
            ));
        }
        for rule in sg["SecurityGroupEgress"].as_array().into_iter().flatten() {
            if (
                num(&rule["FromPort"]),
                num(&rule["ToPort"]),
                text(&rule["IpProtocol"]),
            ) != (Some(443), Some(443), "tcp".to_string())
            {
                p.push(format!(
                    "FeedSecurityGroup: egress {rule} is not HTTPS only"
                ));
            }
        }
        let td = &res["FeedTaskDefinition"]["Properties"];
        let arch = &td["RuntimePlatform"]["CpuArchitecture"];
        let arch_default = match arch.get("Ref").and_then(Value::as_str) {
            Some(param) => t["Parameters"][param]["Default"].clone(),
            None => arch.clone(),
        };
        if arch_default != "ARM64" {
            p.push(format!(
                "FeedTaskDefinition: CPU {arch_default}, expected ARM64 by default"
            ));
        }
        if td["RequiresCompatibilities"] != json!(["FARGATE"]) || td["NetworkMode"] != "awsvpc" {
            p.push("FeedTaskDefinition: not a Fargate awsvpc task".into());
        }
        let container = &td["ContainerDefinitions"][0];
        let stop = num(&container["StopTimeout"]).unwrap_or(0);
        if !(26..=120).contains(&stop) {
            p.push(format!(
                "FeedTaskDefinition: StopTimeout {stop} s, must outlast the binary's 25 s stop grace (and Fargate allows 120)"
            ));
        }
        let env: Vec<String> = container["Environment"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| text(&e["Name"]))
            .collect();
        for var in [
            MARKETS_TABLE_VAR,
            OPS_TABLE_VAR,
            BUCKET_VAR,
            LIVE_QUEUE_URL_VAR,
        ] {
            if !env.iter().any(|e| e == var) {
                p.push(format!(
                    "FeedTaskDefinition: {var} is not set; the feed's store needs it"
                ));
            }
        }
        let service = &res["FeedService"]["Properties"];
        let strategy = &service["CapacityProviderStrategy"][0]["CapacityProvider"];
        if strategy != &json!({"Ref": "FeedCapacityProvider"})
            || t["Parameters"]["FeedCapacityProvider"]["AllowedValues"]
                != json!(["FARGATE_SPOT", "FARGATE"])
        {
            p.push("FeedService: Fargate Spot is not a FeedCapacityProvider choice".into());
        }
        p
    }

    #[test]
    fn given_template_yaml_then_the_live_feed_resources_match_the_trades_function_and_the_task() {
        let Some(t) = template() else { return };
        let problems = live_problems(t);
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    #[test]
    fn given_a_drifted_live_feed_resource_then_the_check_names_it() {
        let Some(t) = template() else { return };
        let changes: [(&str, &str, Change<Value>); 8] = [
            ("a short visibility", "LiveQueue: visibility", |t| {
                t["Resources"]["LiveQueue"]["Properties"]["VisibilityTimeout"] = json!(120)
            }),
            (
                "no partial batch response",
                "TradesFunction: no ReportBatchItemFailures",
                |t| {
                    t["Resources"]["TradesFunction"]["Properties"]["Events"]["Live"]["Properties"]
                        .as_object_mut()
                        .unwrap()
                        .remove("FunctionResponseTypes");
                },
            ),
            ("an ingress rule", "FeedSecurityGroup: has ingress", |t| {
                t["Resources"]["FeedSecurityGroup"]["Properties"]["SecurityGroupIngress"] = json!([{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "CidrIp": "0.0.0.0/0"}])
            }),
            ("x86 by default", "FeedTaskDefinition: CPU", |t| {
                t["Parameters"]["FeedCpuArchitecture"]["Default"] = json!("X86_64")
            }),
            ("a wider trades role", "TradesRole grants", |t| {
                t["Resources"]["TradesRole"]["Properties"]["Policies"][0]["PolicyDocument"]
                    ["Statement"][1]["Action"] = json!(["s3:PutObject", "s3:GetObject"])
            }),
            ("a wider feed role", "FeedTaskRole grants", |t| {
                t["Resources"]["FeedTaskRole"]["Properties"]["Policies"][0]["PolicyDocument"]
                    ["Statement"][2]["Resource"] = json!({"Fn::Sub": "${DataBucket.Arn}/live/*"})
            }),
            ("heartbeats unscoped", "FeedTaskRole: PutItem on Ops", |t| {
                t["Resources"]["FeedTaskRole"]["Properties"]["Policies"][0]["PolicyDocument"]
                    ["Statement"][1]
                    .as_object_mut()
                    .unwrap()
                    .remove("Condition");
            }),
            (
                "a stop shorter than the grace",
                "FeedTaskDefinition: StopTimeout",
                |t| {
                    t["Resources"]["FeedTaskDefinition"]["Properties"]["ContainerDefinitions"][0]
                        ["StopTimeout"] = json!(10)
                },
            ),
        ];
        for (what, want, change) in changes {
            let mut t = t.clone();
            change(&mut t);
            let problems = live_problems(&t);
            assert!(
                problems.iter().any(|p| p.starts_with(want)),
                "{what} was not reported as {want:?}: {problems:?}"
            );
        }
    }
}

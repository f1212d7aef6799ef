//! Every endpoint of the status API, once: its path, what it answers, and the query
//! parameters it accepts with their types and bounds. The router is built from this table,
//! each handler checks its query against its entry, and `docs/openapi.json` is generated from
//! it — so the three cannot disagree.

/// Which handler answers an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Id {
    Root,
    OpenApi,
    Health,
    HealthCritical,
    Stats,
    Markets,
    Market,
    Transitions,
    TasksStatus,
    TasksRuns,
    Coverage,
    Gaps,
    Completeness,
    WebSocket,
    Events,
    EventStream,
    Tables,
    Table,
    ExecutorStatus,
    ExecutorPositions,
    ExecutorFills,
    ExecutorSignals,
    Strategies,
    StrategyToggle,
}

/// The HTTP method of an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    /// Takes a JSON object body whose fields are the route's `body`.
    Post,
}

impl Method {
    /// `get` or `post`, as OpenAPI names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "get",
            Method::Post => "post",
        }
    }
}

/// One endpoint.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub id: Id,
    /// The path, path parameters in braces: `/api/markets/{condition_id}`.
    pub path: &'static str,
    pub summary: &'static str,
    /// What it answers, for a person.
    pub description: &'static str,
    pub query: &'static [Param],
    /// Answered only by a local run; the status function answers `404 not_available`.
    pub local_only: bool,
    /// Answers `text/event-stream` rather than JSON.
    pub stream: bool,
    pub method: Method,
    /// The fields of a `POST`'s JSON body (all required; no other field is taken).
    pub body: &'static [Param],
}

/// One query parameter.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    pub name: &'static str,
    pub kind: Kind,
    pub doc: &'static str,
}

/// What a parameter's value must be.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// An integer in `min..=max`, `default` when absent.
    Int { min: u64, max: u64, default: u64 },
    /// A tier: `0`–`4` or `T0`–`T4`.
    Tier,
    /// Free text of at most `max_len` characters.
    Text { max_len: usize },
    /// One of `values`; `default` when absent.
    Enum {
        values: &'static [&'static str],
        default: &'static str,
    },
    /// An opaque cursor from a previous page's `next_cursor`.
    Cursor,
    /// `true` or `false` (body fields only).
    Bool,
}

const fn int(name: &'static str, min: u64, max: u64, default: u64, doc: &'static str) -> Param {
    Param {
        name,
        kind: Kind::Int { min, max, default },
        doc,
    }
}

const TIER: Param = Param {
    name: "tier",
    kind: Kind::Tier,
    doc: "Only this tier (0-4 or T0-T4).",
};

const CURSOR: Param = Param {
    name: "cursor",
    kind: Kind::Cursor,
    doc: "The next_cursor of the previous page.",
};

const CONDITION_ID: Param = Param {
    name: "condition_id",
    kind: Kind::Text { max_len: 130 },
    doc: "Only this market.",
};

/// The event kinds of `/api/events` and its stream.
pub const EVENT_KINDS: &[&str] = &["all", "trades", "whales"];

/// The state filter of `/api/markets`.
pub const MARKET_STATES: &[&str] = &["active", "ended", "all"];

/// The task run statuses, as stored.
pub const RUN_STATUSES: &[&str] = &["ok", "partial", "skipped", "failed"];

/// The `status` filter of `/api/executor/positions`.
pub const POSITION_STATES: &[&str] = &["open", "closed", "all"];

/// The `decision` filter of `/api/executor/signals`.
pub const SIGNAL_DECISIONS: &[&str] = &["ordered", "rejected"];

const STRATEGY: Param = Param {
    name: "strategy",
    kind: Kind::Text { max_len: 64 },
    doc: "Only this strategy's.",
};

/// Every endpoint.
pub const ROUTES: &[Route] = &[
    Route {
        id: Id::Root,
        path: "/",
        summary: "The dashboard",
        description: "One self-contained HTML page (no external file; works offline and \
                      behind a stage path) over this API's JSON: markets per tier, samples \
                      per hour, trades per minute, shards, coverage, tasks, a searchable \
                      markets table with each market's recent samples, transitions, data \
                      quality, failed runs, a browser of every table, and the paper executor \
                      (account, equity curve, open and closed positions, the signal feed, \
                      strategies with their on/off switch when served locally); refreshes \
                      itself.",
        query: &[],
        local_only: false,
        stream: false,
        method: Method::Get,
        body: &[],
    },
    Route {
        id: Id::OpenApi,
        path: "/api/openapi.json",
        summary: "This API's OpenAPI document",
        description: "The OpenAPI 3.1 document of every endpoint (docs/openapi.json).",
        query: &[],
        local_only: false,
        stream: false,
        method: Method::Get,
        body: &[],
    },
    Route {
        id: Id::Health,
        path: "/health",
        summary: "Health checks",
        description: "Always 200: status ok, starting or degraded, the failing checks \
                      (discovery, ticks_T<n>, coverage_T<n>, task_<name>), and per tier the \
                      coverage ledger of the last hour.",
        query: &[],
        local_only: false,
        stream: false,
        method: Method::Get,
        body: &[],
    },
    Route {
        id: Id::HealthCritical,
        path: "/health/critical",
        summary: "Health for monitors",
        description: "As /health, but 503 while any check fails (200 when none does).",
        query: &[],
        local_only: false,
        stream: false,
        method: Method::Get,
        body: &[],
    },
    Route {
        id: Id::Stats,
        path: "/api/stats",
        summary: "Counters",
        description: "Markets per tier, result counts, per tier its Latest tick and the last \
                      hour's ticks and samples; run (a local run's counters since start) and \
                      live (the feed's counters and trades per minute) are null in the cloud. \
                      Markets per tier are counted by end date at the time asked, over the \
                      active markets as maintenance's re-tier (every 5 minutes) last left \
                      them: a market discovered or closed since is counted from its next run \
                      (at most 5 minutes), one that the resolutions duty closed before its end \
                      date from its next full pass (at most an hour).",
        query: &[],
        local_only: false,
        stream: false,
        method: Method::Get,
        body: &[],
    },
    Route {
        id: Id::Markets,
        path: "/api/markets",
        summary: "Markets, searchable and paged",
        description: "Tracked markets ordered by end date, with their tier now and their \
                      newest headline values; filtered by tier, state and a text search on \
                      question and slug.",
        query: &[
            TIER,
            Param {
                name: "q",
                kind: Kind::Text { max_len: 200 },
                doc: "Case-insensitive text the question or the slug contains.",
            },
            Param {
                name: "state",
                kind: Kind::Enum {
                    values: MARKET_STATES,
                    default: "active",
                },
                doc: "active (sampled now), ended (awaiting a result) or all (reads every \
                      market).",
            },
            int("limit", 1, 500, 50, "Markets per page."),
            CURSOR,
        ],
        local_only: false,
        stream: false,
        method: Method::Get,
        body: &[],
    },
    Route {
        id: Id::Market,
        path: "/api/markets/{condition_id}",
        summary: "One market",
        description: "Its record (state, outcome), its tier history and recorded \
                      transitions, its newest headline values and its newest snapshots read \
                      back from Parquet. 404 for a market polytape does not track.",
        query: &[int(
            "snapshots",
            0,
            100,
            20,
            "Newest snapshot rows to return.",
        )],
        local_only: false,
        stream: false,
        method: Method::Get,
        body: &[],
    },
    Route {
        id: Id::Transitions,
        path: "/api/tier-transitions",
        summary: "Recent transitions",
        description: "Every change of a tracked market (discovered, tier change, closed, \
                      resolved, expired, delisted, relisted, unresolved), newest first.",
        query: &[
            CONDITION_ID,
            Param {
                name: "reason",
                kind: Kind::Enum {
                    values: &polytape_core::ops::reason::ALL,
                    default: "",
                },
                doc: "Only this reason.",
            },
            TIER,
            int("limit", 1, 500, 100, "Transitions per page."),
            CURSOR,
        ],
        local_only: false,
        stream: false,
        method: Method::Get,
        body: &[],
    },
    Route {
        id: Id::TasksStatus,
        path: "/api/tasks/status",
        summary: "Tasks",
        description: "Per task its last run (status, duration, error), failures in a row and \
                      next run; per tier its last tick and next tick.",
        query: &[],
        local_only: false,
        stream: false,
        method: Method::Get,
        body: &[],
    },
    Route {
        id: Id::TasksRuns,
        path: "/api/tasks/runs",
        summary: "Task runs",
        description: "Runs newest first, with their errors and reports.",
        query: &[
            Param {
                name: "task",
                kind: Kind::Text { max_len: 64 },
                doc: "Only this task (discovery, maintenance, resolutions, snapshot, \
                      dispatch, …).",
            },
            Param {
                name: "status",
                kind: Kind::Enum {
                    values: RUN_STATUSES,
                    default: "",
                },
                doc: "Only runs that ended so.",
            },
            int("hours", 1, 168, 6, "How far back (runs are kept 7 days)."),
            int("limit", 1, 500, 50, "Runs per page."),
            CURSOR,
        ],
        local_only: false,
        stream: false,
        method: Method::Get,
        body: &[],
    },
    Route {
        id: Id::Coverage,
        path: "/api/data-quality/coverage",
        summary: "Coverage ledger per tier and hour",
        description: "Per tier and UTC hour: ticks owed and how each ended (ok, short, \
                      failed, skipped, missing, pending), samples expected and written, \
                      coverage %.",
        query: &[
            TIER,
            int("hours", 1, 48, 6, "UTC hours back, this one included."),
        ],
        local_only: false,
        stream: false,
        method: Method::Get,
        body: &[],
    },
    Route {
        id: Id::Gaps,
        path: "/api/data-quality/gaps",
        summary: "Markets with missing ticks, stale markets",
        description: "Markets their tier history owed a row at a tick that has none, most \
                      missing first; and markets whose newest sample is older than 3 \
                      intervals of their tier.",
        query: &[
            TIER,
            int("hours", 1, 6, 1, "Hours back."),
            int("limit", 1, 500, 100, "Markets per page."),
            CURSOR,
        ],
        local_only: false,
        stream: false,
        method: Method::Get,
        body: &[],
    },
    Route {
        id: Id::Completeness,
        path: "/api/data-quality/completeness",
        summary: "Non-NULL share per column",
        description: "Over each tier's newest ticks: per column the share of rows where it is \
                      not NULL, per tier and per tier and category (at most 100 tick files \
                      read per call).",
        query: &[TIER, int("ticks", 1, 20, 5, "Newest ticks per tier.")],
        local_only: false,
        stream: false,
        method: Method::Get,
        body: &[],
    },
    Route {
        id: Id::WebSocket,
        path: "/api/websocket",
        summary: "Live feed",
        description: "Shards from their heartbeats, tokens subscribed vs should-subscribe \
                      (two per market of T2–T4, counted as /api/stats counts markets per \
                      tier: at most 5 minutes old), reconnects, G1/G3/G5 counts over the \
                      newest trades; feed (the feed's in-memory counters: silent assets, …) is \
                      null in the cloud.",
        query: &[],
        local_only: false,
        stream: false,
        method: Method::Get,
        body: &[],
    },
    Route {
        id: Id::Events,
        path: "/api/events",
        summary: "Recent trades and whale events",
        description: "The newest stored trades and whale events, newest first.",
        query: &[
            Param {
                name: "kind",
                kind: Kind::Enum {
                    values: EVENT_KINDS,
                    default: "all",
                },
                doc: "trades, whales or all.",
            },
            CONDITION_ID,
            int("limit", 1, 500, 50, "Events at most."),
        ],
        local_only: false,
        stream: false,
        method: Method::Get,
        body: &[],
    },
    Route {
        id: Id::EventStream,
        path: "/api/events/stream",
        summary: "Live feed events as they are stored (local run only)",
        description: "Server-sent events: each trade and whale event, one JSON object per \
                      event (`event:` trade or whale), as the feed stores them; `lagged` with \
                      the number missed when a listener falls behind. The status function \
                      answers 404 not_available.",
        query: &[
            Param {
                name: "kind",
                kind: Kind::Enum {
                    values: EVENT_KINDS,
                    default: "all",
                },
                doc: "trades (trades only), whales or all (feed events too).",
            },
            CONDITION_ID,
        ],
        local_only: true,
        stream: true,
        method: Method::Get,
        body: &[],
    },
    Route {
        id: Id::Tables,
        path: "/api/tables",
        summary: "Every table",
        description: "The Parquet tables (files, bytes, rows over the newest days: compacted \
                      hours from their manifests, other files from their footers) and the \
                      state tables (rows of the small ones; null for markets, task runs, \
                      coverage and transitions, which only their pages read), locally and in \
                      the cloud alike.",
        query: &[int(
            "days",
            1,
            7,
            1,
            "UTC days (today first) the Parquet tables are counted over.",
        )],
        local_only: false,
        stream: false,
        method: Method::Get,
        body: &[],
    },
    Route {
        id: Id::Table,
        path: "/api/tables/{name}",
        summary: "One table's rows, newest first",
        description: "The rows of a table, newest first, paged: a Parquet table's newest \
                      hour first, within an hour one partition (tier) after the other, each \
                      newest first, so a cursor goes on unchanged across the hour's \
                      compaction; a state table's by key. 404 for a table that does not exist.",
        query: &[int("limit", 1, 500, 50, "Rows per page."), CURSOR],
        local_only: false,
        stream: false,
        method: Method::Get,
        body: &[],
    },
    Route {
        id: Id::ExecutorStatus,
        path: "/api/executor/status",
        summary: "The paper executor's account",
        description: "Whether the paper executor has started and runs (its state \
                      executor/state.json, updated within the last 3 minutes), where its \
                      configuration came from, its last slot and how far that lags behind \
                      now; the paper account (initial cash, cash, reserved, exposure, equity, \
                      peak, drawdown, open positions and orders), realised and unrealised P&L \
                      and fees in total and per strategy, the run totals, and the equity curve \
                      (at most `points` points, evenly thinned, the newest kept). Money is \
                      decimal strings. Before the first run: started false, the rest null.",
        query: &[int("points", 0, 2000, 500, "Equity-curve points at most.")],
        local_only: false,
        stream: false,
        method: Method::Get,
        body: &[],
    },
    Route {
        id: Id::ExecutorPositions,
        path: "/api/executor/positions",
        summary: "Paper positions",
        description: "Open positions (cost, entry price, mark, marked value, unrealised P&L) \
                      in key order, and closed ones (proceeds, realised P&L, why: exit or \
                      settlement) newest first; each with its market's question.",
        query: &[
            Param {
                name: "status",
                kind: Kind::Enum {
                    values: POSITION_STATES,
                    default: "open",
                },
                doc: "open, closed or all (open first).",
            },
            STRATEGY,
            int("limit", 1, 500, 100, "Positions at most."),
        ],
        local_only: false,
        stream: false,
        method: Method::Get,
        body: &[],
    },
    Route {
        id: Id::ExecutorFills,
        path: "/api/executor/fills",
        summary: "Paper fills, newest first",
        description: "Every fill of every paper order (taker walks of the book, maker fills of \
                      resting orders), newest first, paged.",
        query: &[
            STRATEGY,
            int("limit", 1, 500, 50, "Fills per page."),
            CURSOR,
        ],
        local_only: false,
        stream: false,
        method: Method::Get,
        body: &[],
    },
    Route {
        id: Id::ExecutorSignals,
        path: "/api/executor/signals",
        summary: "The latest signals and what became of them",
        description: "The newest signals the strategies emitted (the state keeps the latest \
                      500; the signals table has them all), newest first, each with its \
                      decision: ordered (order id, USD) or rejected (by which risk limit).",
        query: &[
            STRATEGY,
            Param {
                name: "decision",
                kind: Kind::Enum {
                    values: SIGNAL_DECISIONS,
                    default: "",
                },
                doc: "Only signals ordered or rejected.",
            },
            int("limit", 1, 500, 50, "Signals at most."),
        ],
        local_only: false,
        stream: false,
        method: Method::Get,
        body: &[],
    },
    Route {
        id: Id::Strategies,
        path: "/api/strategies",
        summary: "The strategies, with their parameters",
        description: "Every configured strategy: description, version, parameters (defaults \
                      filled in) and whether it is enabled, the on/off overrides of \
                      executor/strategies.json applied. Locally from the run's \
                      configuration; in the cloud from the executor's last run. toggle: true \
                      where POST /api/strategies/{name} is served (null in the cloud).",
        query: &[],
        local_only: false,
        stream: false,
        method: Method::Get,
        body: &[],
    },
    Route {
        id: Id::StrategyToggle,
        path: "/api/strategies/{name}",
        summary: "Switch a strategy on or off (local run only)",
        description: "Writes the strategy's override to executor/strategies.json, which the \
                      executor's next run applies; answers the strategy as /api/strategies \
                      lists it. 404 not_found for a strategy not configured; the status \
                      function writes nothing and answers 404 not_available.",
        query: &[],
        local_only: true,
        stream: false,
        method: Method::Post,
        body: &[Param {
            name: "enabled",
            kind: Kind::Bool,
            doc: "true: the strategy opens positions; false: it does not (its open \
                  positions stay, marked and settled).",
        }],
    },
];

impl Route {
    /// The media type of a 200 answer.
    pub fn content_type(&self) -> &'static str {
        if self.stream {
            "text/event-stream"
        } else if self.id == Id::Root {
            "text/html"
        } else {
            "application/json"
        }
    }
}

/// The entry of `id`.
pub fn route(id: Id) -> &'static Route {
    ROUTES.iter().find(|r| r.id == id).unwrap_or(&ROUTES[0])
}

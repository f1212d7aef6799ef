//! The coverage ledger: what the schedule owed and what was written — per tier, per UTC hour
//! and per market — with no write of its own. DESIGN.md's cost rules forbid a write per market
//! per tick, so nothing here is stored: the ledger is derived from what exists.
//!
//! * **Owed ticks** come from the tier schedule ([`scheduled`]): every multiple of a tier's
//!   interval since the collector started (`since`: the local run's start, in the cloud the
//!   first task ever recorded).
//! * **Per tick**, the coverage record each tick writes whatever happens (expected markets,
//!   rows written, skipped, failed) says how it ended ([`TickOutcome`]); a tick with no record
//!   once it should have one is *missing* (it never ran: a crashed invocation, a stopped
//!   schedule); one whose time has not come to be recorded is *pending* and not counted yet.
//! * **Expected samples** are the tick's own count of the markets it had to sample; a tick
//!   that never counted them (skipped, missing, failed before reading the markets) is given an
//!   estimate from the markets' **tier history** ([`tier_at`]: the tier a market's end date
//!   put it in at the tick, between its discovery and its close) — marked as estimated.
//! * **Per market**, the same tier history says which owed ticks should hold a row of it, and
//!   the Parquet rows say which do — read only for the ticks whose record shows a shortfall
//!   ([`gaps`]), so a healthy hour costs no read at all.
//!
//! `/api/data-quality/coverage`, `/api/data-quality/gaps`, `/health` and `/api/stats` all
//! count with [`tally`], and the Athena named query "coverage per market" (template.yaml)
//! counts the same way from the `snapshots` and `markets` tables.

use crate::error::HandlerError;
use polytape_core::ops::{Coverage, LatestTier};
use polytape_core::{Market, TickId, Tier, Ts, TIERS};
use polytape_store::read::TickReader;
use polytape_store::{keys, CoverageStore, LatestStore, MarketStore, ObjectStore};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};

/// A tick with no record is counted missing only once its interval and this much more have
/// passed: its deadline is its next tick, its writes and a late queue delivery take a little
/// longer.
pub const SETTLE: chrono::Duration = chrono::Duration::seconds(30);

/// How one owed tick ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TickOutcome {
    /// Wrote a row for every market it expected.
    Ok,
    /// Ran, wrote rows, but fewer than it expected.
    Short,
    /// Failed (an error, or it observed none of its markets).
    Failed,
    /// Started later than its interval: nothing written.
    Skipped,
    /// No record although it should have one by now: it never ran (or died before recording).
    Missing,
    /// No record yet, and its time to have one has not come.
    Pending,
}

/// How `tick` ended, from its coverage record (if any), as seen at `now`.
pub fn outcome(record: Option<&Coverage>, tick: TickId, now: Ts) -> TickOutcome {
    match record {
        Some(c) if c.skipped => TickOutcome::Skipped,
        Some(c) if c.failed => TickOutcome::Failed,
        Some(c) if c.written < c.expected => TickOutcome::Short,
        Some(_) => TickOutcome::Ok,
        None if now >= settled_at(tick) => TickOutcome::Missing,
        None => TickOutcome::Pending,
    }
}

/// When a tick should have its record: its next tick, plus [`SETTLE`].
pub fn settled_at(tick: TickId) -> Ts {
    tick.next().tick_ts + SETTLE
}

/// The ticks of `tier` scheduled in `[from, to)`, in time order.
pub fn scheduled(tier: Tier, from: Ts, to: Ts) -> Vec<TickId> {
    let mut t = TickId::floor(tier, from);
    if t.tick_ts < from {
        t = t.next();
    }
    let mut out = Vec::new();
    while t.tick_ts < to {
        out.push(t);
        t = t.next();
    }
    out
}

/// The tier `market` was sampled in at `t` by its tier history: the tier its end date puts it
/// in ([`Tier::at`]: T4 up to 24 h past the end), from its discovery until it closed; `None`
/// outside that time.
pub fn tier_at(market: &Market, t: Ts) -> Option<Tier> {
    if t < market.first_seen || market.closed_at.is_some_and(|c| c <= t) {
        return None;
    }
    Tier::at(t, market.end_date)
}

/// One stretch of a market's tier history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Segment {
    pub tier: Tier,
    pub from: Ts,
    /// When it left the tier; `None` while it is still in it at `now`.
    pub to: Option<Ts>,
}

/// The tiers `market` was (and is) sampled in up to `now`, oldest first ([`tier_at`] as
/// stretches of time).
pub fn tier_history(market: &Market, now: Ts) -> Vec<Segment> {
    let mut out: Vec<Segment> = Vec::new();
    for (tier, from, to) in tier_spans(market) {
        if from >= now {
            continue;
        }
        out.push(Segment {
            tier,
            from,
            to: (to <= now).then_some(to),
        });
    }
    out
}

/// `(tier, from, to)`: when `market` was in each tier, `[from, to)`, clipped to its
/// discovery and its close (a tier it never reached is left out).
fn tier_spans(market: &Market) -> Vec<(Tier, Ts, Ts)> {
    let secs = chrono::Duration::seconds;
    let end = market.end_date;
    let start = market.first_seen;
    let stop = market
        .closed_at
        .unwrap_or(end + secs(polytape_core::tier::SAMPLED_PAST_END_S));
    let mut out = Vec::new();
    for spec in TIERS.iter() {
        // In the tier while `above_s < end - t <= above_s(slower)`:
        // t in [end - above_s(slower), end - above_s).
        let enter = match spec.tier {
            Tier::T0 => start,
            t => end - secs(TIERS[t as usize - 1].above_s),
        };
        let leave = if spec.tier == Tier::T4 {
            end + secs(polytape_core::tier::SAMPLED_PAST_END_S)
        } else {
            end - secs(spec.above_s)
        };
        let (from, to) = (enter.max(start), leave.min(stop));
        if from < to {
            out.push((spec.tier, from, to));
        }
    }
    out
}

/// How many markets each tier owed a sample at a given time, from the markets' tier
/// histories: for ticks that never counted their own markets.
pub struct Estimator {
    /// Per tier: when each market entered it and when it left, each sorted.
    spans: BTreeMap<Tier, (Vec<Ts>, Vec<Ts>)>,
}

impl Estimator {
    /// From the markets' records (active and awaiting a result: a market resolved since is no
    /// longer among them, so estimates of ticks long past may fall a little short).
    pub fn new<'a>(markets: impl IntoIterator<Item = &'a Market>) -> Estimator {
        let mut spans: BTreeMap<Tier, (Vec<Ts>, Vec<Ts>)> = BTreeMap::new();
        for m in markets {
            for (tier, from, to) in tier_spans(m) {
                let e = spans.entry(tier).or_default();
                e.0.push(from);
                e.1.push(to);
            }
        }
        for (enters, leaves) in spans.values_mut() {
            enters.sort_unstable();
            leaves.sort_unstable();
        }
        Estimator { spans }
    }

    /// The markets `tick`'s tier held at its time.
    pub fn expected(&self, tick: TickId) -> u32 {
        let Some((enters, leaves)) = self.spans.get(&tick.tier) else {
            return 0;
        };
        let entered = enters.partition_point(|t| *t <= tick.tick_ts);
        let left = leaves.partition_point(|t| *t <= tick.tick_ts);
        u32::try_from(entered.saturating_sub(left)).unwrap_or(u32::MAX)
    }
}

/// Ticks and samples of one tier over a stretch of time.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Tally {
    /// Ticks the schedule owed (recorded or missing; pending ones are not owed yet).
    pub ticks: u32,
    pub ok_ticks: u32,
    pub short_ticks: u32,
    pub failed_ticks: u32,
    pub skipped_ticks: u32,
    pub missing_ticks: u32,
    /// Of `missing_ticks`, those that owed samples by their estimate (a missing tick of a tier
    /// with no market in it owed nothing): what `/health` counts as failed.
    pub missing_owed_ticks: u32,
    pub pending_ticks: u32,
    /// Samples (rows) the owed ticks should have written.
    pub expected_samples: u64,
    /// Rows written.
    pub samples: u64,
    /// `expected_samples - samples`.
    pub missing_samples: u64,
    /// Of `expected_samples`, those estimated from the tier histories (for ticks that never
    /// counted their markets); 0 where nothing was estimated.
    pub estimated_samples: u64,
    /// `samples / expected_samples`, in percent; `None` when nothing was expected.
    pub coverage_pct: Option<f64>,
}

impl Tally {
    /// Ticks that left a record.
    pub fn recorded_ticks(&self) -> u32 {
        self.ticks - self.missing_ticks
    }

    fn add(&mut self, outcome: TickOutcome, expected: u64, written: u64, estimated: bool) {
        if outcome == TickOutcome::Pending {
            self.pending_ticks += 1;
            return;
        }
        self.ticks += 1;
        match outcome {
            TickOutcome::Ok => self.ok_ticks += 1,
            TickOutcome::Short => self.short_ticks += 1,
            TickOutcome::Failed => self.failed_ticks += 1,
            TickOutcome::Skipped => self.skipped_ticks += 1,
            TickOutcome::Missing => {
                self.missing_ticks += 1;
                self.missing_owed_ticks += u32::from(expected > 0);
            }
            TickOutcome::Pending => {}
        }
        self.expected_samples += expected;
        self.samples += written;
        if estimated {
            self.estimated_samples += expected;
        }
        self.finish();
    }

    fn finish(&mut self) {
        self.missing_samples = self.expected_samples.saturating_sub(self.samples);
        self.coverage_pct = (self.expected_samples > 0)
            .then(|| round1(100.0 * self.samples as f64 / self.expected_samples as f64));
    }
}

/// A tier as the status API names it: `T2`.
pub fn tier_name<S: serde::Serializer>(t: &Tier, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(t)
}

fn opt_tier_name<S: serde::Serializer>(t: &Option<Tier>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.collect_str(t),
        None => s.serialize_none(),
    }
}

/// `x` to one decimal.
fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Counts the ticks of `tier` scheduled in `[from, to)` (as of `now`): each by its coverage
/// record in `records` (any tier, any time; matched by tier and tick). Ticks before `since`
/// count only when recorded (they were owed by an earlier run, if any). A tick that never
/// counted its markets takes `estimate`'s count, when given, else none.
pub fn tally(
    tier: Tier,
    from: Ts,
    to: Ts,
    now: Ts,
    since: Option<Ts>,
    records: &HashMap<TickId, &Coverage>,
    estimate: Option<&Estimator>,
) -> Tally {
    let mut t = Tally::default();
    for tick in scheduled(tier, from, to.min(now)) {
        let record = records.get(&tick).copied();
        if record.is_none() && since.is_some_and(|s| tick.tick_ts < s) {
            continue;
        }
        let o = outcome(record, tick, now);
        let counted = record.filter(|c| c.expected > 0 || !(c.skipped || c.failed));
        let (expected, estimated) = match (counted, estimate) {
            (Some(c), _) => (u64::from(c.expected), false),
            (None, Some(e)) => (u64::from(e.expected(tick)), true),
            (None, None) => (0, false),
        };
        let written = record.map_or(0, |c| u64::from(c.written));
        t.add(o, expected, written, estimated && expected > 0);
    }
    t
}

/// Coverage records by tick.
pub fn by_tick(records: &[Coverage]) -> HashMap<TickId, &Coverage> {
    records
        .iter()
        .map(|c| {
            (
                TickId {
                    tier: c.tier,
                    tick_ts: c.tick_ts,
                },
                c,
            )
        })
        .collect()
}

/// The start of the UTC hour of `t`.
pub fn hour_of(t: Ts) -> Ts {
    let secs = t.timestamp().div_euclid(3600) * 3600;
    chrono::DateTime::from_timestamp(secs, 0).unwrap_or(t)
}

/// One tier in one UTC hour.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TierHour {
    #[serde(serialize_with = "tier_name")]
    pub tier: Tier,
    pub hour: Ts,
    #[serde(flatten)]
    pub tally: Tally,
}

/// Expected vs written samples per tier and UTC hour.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CoverageReport {
    pub from: Ts,
    pub to: Ts,
    /// Ticks before this are owed only where recorded (the collector started then).
    pub since: Option<Ts>,
    /// Newest hour first, tiers in order within an hour.
    pub hours: Vec<TierHour>,
    /// Per tier over the whole window.
    pub tiers: BTreeMap<String, Tally>,
}

/// The ledger per tier and hour over the hours from `from`'s to `now`'s, for `tiers`. Reads
/// the coverage records of the window and, only when some tick never counted its markets, the
/// markets (active and awaiting a result) for the estimate.
pub async fn coverage<S>(
    store: &S,
    now: Ts,
    from: Ts,
    since: Option<Ts>,
    tiers: &[Tier],
) -> Result<CoverageReport, HandlerError>
where
    S: CoverageStore + MarketStore,
{
    let from = hour_of(from);
    let records = store.coverage_since(from).await?;
    let index = by_tick(&records);
    let estimator = needs_estimate(&index, tiers, from, now, since)
        .then(|| estimator(store))
        .map(Box::pin);
    let estimator = match estimator {
        Some(f) => Some(f.await?),
        None => None,
    };
    let mut hours = Vec::new();
    let mut tier_totals: BTreeMap<String, Tally> = BTreeMap::new();
    let mut hour = hour_of(now);
    while hour >= from {
        for &tier in tiers {
            let t = tally(
                tier,
                hour,
                hour + chrono::Duration::hours(1),
                now,
                since,
                &index,
                estimator.as_ref(),
            );
            merge(tier_totals.entry(tier.to_string()).or_default(), &t);
            hours.push(TierHour {
                tier,
                hour,
                tally: t,
            });
        }
        hour -= chrono::Duration::hours(1);
    }
    Ok(CoverageReport {
        from,
        to: now,
        since,
        hours,
        tiers: tier_totals,
    })
}

/// The ledger of `tiers` over `[from, to)` as of `now`, one [`Tally`] per tier, each tick
/// counted as [`coverage`] counts it (uncounted and missing ticks estimated from the tier
/// histories): what `/health` and `/api/stats` show for the last hour. Reads the coverage
/// records of the window and, only when some tick never counted its markets, the markets.
pub async fn window<S>(
    store: &S,
    from: Ts,
    to: Ts,
    now: Ts,
    since: Option<Ts>,
    tiers: &[Tier],
) -> Result<BTreeMap<Tier, Tally>, HandlerError>
where
    S: CoverageStore + MarketStore,
{
    let records = store.coverage_since(from).await?;
    let index = by_tick(&records);
    let estimator = if needs_estimate(&index, tiers, from, to.min(now), since) {
        Some(estimator(store).await?)
    } else {
        None
    };
    Ok(tiers
        .iter()
        .map(|&tier| {
            let t = tally(tier, from, to, now, since, &index, estimator.as_ref());
            (tier, t)
        })
        .collect())
}

/// Adds `t` into `into`.
fn merge(into: &mut Tally, t: &Tally) {
    into.ticks += t.ticks;
    into.ok_ticks += t.ok_ticks;
    into.short_ticks += t.short_ticks;
    into.failed_ticks += t.failed_ticks;
    into.skipped_ticks += t.skipped_ticks;
    into.missing_ticks += t.missing_ticks;
    into.missing_owed_ticks += t.missing_owed_ticks;
    into.pending_ticks += t.pending_ticks;
    into.expected_samples += t.expected_samples;
    into.samples += t.samples;
    into.estimated_samples += t.estimated_samples;
    into.finish();
}

/// Whether some owed tick in the window has no count of its own markets.
fn needs_estimate(
    index: &HashMap<TickId, &Coverage>,
    tiers: &[Tier],
    from: Ts,
    now: Ts,
    since: Option<Ts>,
) -> bool {
    tiers.iter().any(|&tier| {
        scheduled(tier, from.max(since.unwrap_or(from)), now)
            .into_iter()
            .any(|tick| match index.get(&tick) {
                Some(c) => c.expected == 0 && (c.skipped || c.failed),
                None => outcome(None, tick, now) == TickOutcome::Missing,
            })
    })
}

async fn estimator<S: MarketStore>(store: &S) -> Result<Estimator, HandlerError> {
    let (active, awaiting) =
        tokio::try_join!(store.active_markets(), store.markets_awaiting_result())?;
    Ok(Estimator::new(active.iter().chain(awaiting.iter())))
}

/// A market that missed owed ticks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MarketGap {
    pub condition_id: String,
    pub question: String,
    /// Its tier at the end of the window, by its tier history.
    #[serde(serialize_with = "opt_tier_name")]
    pub tier: Option<Tier>,
    /// Ticks of the window that owed it a row.
    pub expected_ticks: u32,
    /// Of those, the ticks without its row.
    pub missing_ticks: u32,
    /// The first missing ticks (at most [`MAX_LISTED`]), oldest first.
    pub missing: Vec<Ts>,
}

/// Missing ticks listed per market at most.
pub const MAX_LISTED: usize = 20;

/// A market whose newest sample is older than its tier allows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StaleMarket {
    pub condition_id: String,
    #[serde(serialize_with = "tier_name")]
    pub tier: Tier,
    /// Its newest sample's tick (`None`: a member of the tier never observed yet).
    pub last_sample_at: Option<Ts>,
    /// Seconds since then (since its tier's newest tick, when never observed).
    pub age_s: i64,
}

/// Markets with missing ticks over `[from, now)`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GapsReport {
    pub from: Ts,
    pub to: Ts,
    /// Owed ticks whose record shows a shortfall (their rows were read).
    pub shortfall_ticks: u32,
    /// True when more shortfall ticks had to be read than one call reads
    /// ([`MAX_TICK_READS`]): the oldest were not checked.
    pub truncated: bool,
    /// Markets with at least one missing tick, most missing first.
    pub markets: Vec<MarketGap>,
}

/// Tick files read per call at most (the newest shortfall ticks first): a few seconds of S3
/// reads, well within the status function's timeout.
pub const MAX_TICK_READS: usize = 200;

/// Which markets missed which owed ticks in `[from, now)`: the ticks whose coverage record
/// shows a shortfall (missing, skipped, failed, short) are read back (their rows' markets),
/// and each market their tier histories owed them but whose row is absent gets a missing
/// tick. Healthy ticks (every expected row written) are not read.
pub async fn gaps<S>(
    store: &S,
    now: Ts,
    from: Ts,
    since: Option<Ts>,
    tiers: &[Tier],
) -> Result<GapsReport, HandlerError>
where
    S: CoverageStore + MarketStore + ObjectStore,
{
    let records = store.coverage_since(from).await?;
    let index = by_tick(&records);
    let (active, awaiting) =
        tokio::try_join!(store.active_markets(), store.markets_awaiting_result())?;
    let markets: Vec<&Market> = active.iter().chain(awaiting.iter()).collect();
    let start = since.map_or(from, |s| from.max(s));
    let mut shortfall = Vec::new();
    for &tier in tiers {
        for tick in scheduled(tier, from, now) {
            let record = index.get(&tick).copied();
            if record.is_none() && tick.tick_ts < start {
                continue;
            }
            match outcome(record, tick, now) {
                TickOutcome::Ok | TickOutcome::Pending => {}
                _ => shortfall.push(tick),
            }
        }
    }
    // Newest first, so a truncated answer holds the most recent gaps.
    shortfall.sort_by(|a, b| b.tick_ts.cmp(&a.tick_ts).then(a.tier.cmp(&b.tier)));
    let truncated = shortfall.len() > MAX_TICK_READS;
    shortfall.truncate(MAX_TICK_READS);

    let mut reader = TickReader::new(store, keys::SNAPSHOTS);
    let mut missing: HashMap<&str, Vec<Ts>> = HashMap::new();
    for tick in &shortfall {
        let present: HashSet<String> = reader
            .condition_ids(*tick)
            .await?
            .unwrap_or_default()
            .into_iter()
            .collect();
        for m in &markets {
            if tier_at(m, tick.tick_ts) == Some(tick.tier) && !present.contains(&m.condition_id) {
                missing
                    .entry(&m.condition_id)
                    .or_default()
                    .push(tick.tick_ts);
            }
        }
    }
    let mut out: Vec<MarketGap> = Vec::new();
    for m in &markets {
        let Some(ticks) = missing.get_mut(m.condition_id.as_str()) else {
            continue;
        };
        ticks.sort_unstable();
        // The ticks the shortfall was looked for in, counted alike: recorded ones from
        // `from`, unrecorded (missing) ones from `start`.
        let expected_ticks = tiers
            .iter()
            .flat_map(|&tier| scheduled(tier, from, now))
            .filter(|t| tier_at(m, t.tick_ts) == Some(t.tier))
            .filter(|t| {
                index.contains_key(t)
                    || (t.tick_ts >= start && outcome(None, *t, now) == TickOutcome::Missing)
            })
            .count();
        out.push(MarketGap {
            condition_id: m.condition_id.clone(),
            question: m.question.clone(),
            tier: tier_at(m, now),
            expected_ticks: u32::try_from(expected_ticks).unwrap_or(u32::MAX),
            missing_ticks: u32::try_from(ticks.len()).unwrap_or(u32::MAX),
            missing: ticks.iter().take(MAX_LISTED).copied().collect(),
        });
    }
    out.sort_by(|a, b| {
        b.missing_ticks
            .cmp(&a.missing_ticks)
            .then_with(|| a.condition_id.cmp(&b.condition_id))
    });
    Ok(GapsReport {
        from,
        to: now,
        shortfall_ticks: u32::try_from(shortfall.len()).unwrap_or(u32::MAX),
        truncated,
        markets: out,
    })
}

/// A tier's sample is stale once it is this many intervals old.
pub const STALE_INTERVALS: i32 = 3;

/// The markets of each tier's newest tick whose newest sample is older than
/// [`STALE_INTERVALS`] intervals of the tier (or who were never observed, once the tier's
/// newest tick is that old), from the tiers' Latest values as of their newest tick
/// ([`crate::latest::current`]: one read per tier, and the tick files since the last write of
/// a tier that writes once a minute).
pub async fn stale<S: LatestStore + ObjectStore + MarketStore>(
    store: &S,
    now: Ts,
    tiers: &[Tier],
) -> Result<Vec<StaleMarket>, HandlerError> {
    let mut out = Vec::new();
    for &tier in tiers {
        let Some(latest) = crate::latest::current(store, tier, now).await? else {
            continue;
        };
        out.extend(stale_of(&latest, now));
    }
    out.sort_by(|a, b| {
        b.age_s
            .cmp(&a.age_s)
            .then_with(|| a.condition_id.cmp(&b.condition_id))
    });
    Ok(out)
}

fn stale_of(latest: &LatestTier, now: Ts) -> Vec<StaleMarket> {
    let limit =
        chrono::Duration::seconds(i64::from(latest.tier.interval_s()) * i64::from(STALE_INTERVALS));
    latest
        .markets
        .iter()
        .filter_map(|e| {
            let (last, since) = if e.snapshot_count == 0 {
                (None, latest.tick_ts)
            } else {
                (Some(e.tick_ts), e.tick_ts)
            };
            (now - since > limit).then(|| StaleMarket {
                condition_id: e.condition_id.clone(),
                tier: latest.tier,
                last_sample_at: last,
                age_s: (now - since).num_seconds(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Ts {
        s.parse().expect("a time")
    }

    fn market(first_seen: &str, end: &str, closed: Option<&str>) -> Market {
        let mut m = polytape_store::contract::market(1, Some(Tier::T1), true);
        m.first_seen = at(first_seen);
        m.end_date = at(end);
        m.closed_at = closed.map(at);
        m
    }

    fn cov(
        tier: Tier,
        tick: &str,
        expected: u32,
        written: u32,
        skipped: bool,
        failed: bool,
    ) -> Coverage {
        Coverage {
            tier,
            tick_ts: at(tick),
            expected,
            written,
            missing: expected - written.min(expected),
            skipped,
            failed,
        }
    }

    #[test]
    fn given_a_market_then_its_tier_history_follows_its_end_date_from_discovery_to_close() {
        // Found 50 h before its end, closed 30 min after it.
        let m = market(
            "2026-11-18T08:00:00Z",
            "2026-11-20T10:00:00Z",
            Some("2026-11-20T10:30:00Z"),
        );
        let h = tier_history(&m, at("2026-11-21T00:00:00Z"));
        let stretches: Vec<(Tier, Ts)> = h.iter().map(|s| (s.tier, s.from)).collect();
        assert_eq!(
            stretches,
            vec![
                (Tier::T0, at("2026-11-18T08:00:00Z")),
                (Tier::T1, at("2026-11-18T10:00:00Z")),
                (Tier::T2, at("2026-11-19T22:00:00Z")),
                (Tier::T3, at("2026-11-20T06:00:00Z")),
                (Tier::T4, at("2026-11-20T09:00:00Z")),
            ]
        );
        assert_eq!(h[4].to, Some(at("2026-11-20T10:30:00Z")), "until it closed");
        assert_eq!(tier_at(&m, at("2026-11-20T09:59:59Z")), Some(Tier::T4));
        assert_eq!(tier_at(&m, at("2026-11-20T10:30:00Z")), None);
        assert_eq!(
            tier_at(&m, at("2026-11-18T07:59:59Z")),
            None,
            "not yet found"
        );
        // The estimate agrees with tier_at at every boundary.
        let e = Estimator::new([&m]);
        for t in [
            "2026-11-18T08:00:00Z",
            "2026-11-18T10:00:00Z",
            "2026-11-19T21:59:00Z",
            "2026-11-20T09:00:00Z",
            "2026-11-20T10:29:45Z",
            "2026-11-20T10:30:00Z",
        ] {
            for tier in Tier::ALL {
                let tick = TickId {
                    tier,
                    tick_ts: at(t),
                };
                assert_eq!(
                    e.expected(tick),
                    u32::from(tier_at(&m, at(t)) == Some(tier)),
                    "{tier} at {t}"
                );
            }
        }
    }

    #[test]
    fn given_records_then_the_tally_counts_each_outcome_and_estimates_uncounted_ticks() {
        // T1 ticks 10:00 … 10:55; now 11:00:10, so 10:55's record is still pending (until
        // 11:00:30). 10:05 failed after counting, 10:10 failed before, 10:15 skipped, 10:20
        // short, 10:25 has no record (missing); the rest wrote their 2 markets.
        let mut records = Vec::new();
        for m in [0, 30, 35, 40, 45, 50] {
            records.push(cov(
                Tier::T1,
                &format!("2026-11-20T10:{m:02}:00Z"),
                2,
                2,
                false,
                false,
            ));
        }
        records.push(cov(Tier::T1, "2026-11-20T10:05:00Z", 2, 0, false, true));
        records.push(cov(Tier::T1, "2026-11-20T10:10:00Z", 0, 0, false, true));
        records.push(cov(Tier::T1, "2026-11-20T10:15:00Z", 0, 0, true, false));
        records.push(cov(Tier::T1, "2026-11-20T10:20:00Z", 2, 1, false, false));
        let index = by_tick(&records);
        let two = [
            market("2026-11-20T00:00:00Z", "2026-11-21T00:00:00Z", None),
            market("2026-11-20T00:00:00Z", "2026-11-21T06:00:00Z", None),
        ];
        let est = Estimator::new(two.iter());
        let now = at("2026-11-20T11:00:10Z");
        let t = tally(
            Tier::T1,
            at("2026-11-20T10:00:00Z"),
            at("2026-11-20T11:00:00Z"),
            now,
            None,
            &index,
            Some(&est),
        );
        assert_eq!(
            (
                t.ticks,
                t.ok_ticks,
                t.short_ticks,
                t.failed_ticks,
                t.skipped_ticks,
                t.missing_ticks,
                t.pending_ticks
            ),
            (11, 6, 1, 2, 1, 1, 1)
        );
        assert_eq!(
            (t.expected_samples, t.samples, t.estimated_samples),
            (22, 13, 6)
        );
        assert_eq!(t.coverage_pct, Some(59.1));
        // Without the estimate, the uncounted ticks expect nothing.
        let bare = tally(
            Tier::T1,
            at("2026-11-20T10:00:00Z"),
            at("2026-11-20T11:00:00Z"),
            now,
            None,
            &index,
            None,
        );
        assert_eq!((bare.expected_samples, bare.estimated_samples), (16, 0));
        // Before the collector started, only recorded ticks count.
        let late = tally(
            Tier::T1,
            at("2026-11-20T10:00:00Z"),
            at("2026-11-20T11:00:00Z"),
            now,
            Some(at("2026-11-20T10:30:00Z")),
            &index,
            None,
        );
        assert_eq!(late.missing_ticks, 0);
    }
}

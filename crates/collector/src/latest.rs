//! The Latest values — per tier, each market's headline values at its newest tick — as the
//! ticks write them and the status API reads them.
//!
//! A tier that ticks more often than once a minute (T3 every 30 s, T4 every 15 s) writes its
//! Latest values once a minute ([`period_s`]): the tick at the start of the minute applies
//! itself and the tier's ticks since the last write, read back from their `snapshots` files
//! ([`apply_tick`]); the other ticks leave theirs to it. That is one read and one conditional
//! write a minute for each of those tiers instead of one per tick (docs/costs.md). Another tick
//! writes too, the same way, when the minute's writing tick may already have read the files
//! back (it ends [`LATE_MARGIN`] before the next writing tick or later) or when this minute's
//! writing tick has not written (skipped, failed, or still running): the values never wait for
//! a write that will not come, and applying a tick twice counts it once
//! ([`LatestTier::apply`]).
//!
//! The ticks read back are applied after the tick that writes, which is newer: a `snapshots`
//! file holds the markets that got a row, not those the tick sampled without one, so a tick
//! read back must never decide which markets are in the tier, and an older tick never does.
//!
//! Readers add the tier's ticks of the last minute since the last write the same way
//! ([`current`]), with the markets due at the newest of them as the tier's members, so the
//! status API shows each market as of the tier's newest tick.

use crate::error::HandlerError;
use polytape_core::ops::{LatestTier, LatestUpdate};
use polytape_core::schedule::TickId;
use polytape_core::{Tier, Ts};
use polytape_store::ports::{LatestStore, MarketStore, ObjectStore};
use polytape_store::{keys, parquet};
use std::collections::BTreeSet;

/// How often a tier writes its Latest values, in seconds: every tick for a tier that ticks at
/// most once a minute, once a minute for the others.
pub fn period_s(tier: Tier) -> i64 {
    i64::from(tier.interval_s()).max(60)
}

/// Whether `tick` writes its tier's Latest values whenever it runs: the first tick of each
/// period.
pub fn writes(tick: TickId) -> bool {
    period_start(tick) == tick.tick_ts
}

/// Whether the tier writes less often than it ticks (T3, T4).
fn batched(tier: Tier) -> bool {
    period_s(tier) > i64::from(tier.interval_s())
}

/// A tick that finishes this close to the next writing tick of its tier, or after it, applies
/// itself: the writing tick may have read the files back before this one's was there.
pub const LATE_MARGIN: chrono::Duration = chrono::Duration::seconds(2);

/// At most this many earlier ticks are read back: the span [`LatestEntry::counted`] records.
///
/// [`LatestEntry::counted`]: polytape_core::ops::LatestEntry::counted
pub const READ_BACK_TICKS: usize = 63;

/// What one tick did to its tier's Latest values.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// Ticks applied in the write: the tick itself and those read back; 0 when it left
    /// itself to the next writing tick.
    pub ticks: usize,
    /// `snapshots` files read back that could not be read or decoded (skipped, logged).
    pub unreadable: usize,
}

/// Applies the tick whose contribution is `own` (its file already written) when it writes
/// ([`writes`]), is late (the next writing tick is less than [`LATE_MARGIN`] away at `now`) or
/// finds its minute not written yet, with the tier's ticks since the last write read back from
/// their files; otherwise leaves it to the next writing tick. A read back that fails for a
/// reason a retry may cure leaves the write to the next tick instead of failing this one,
/// whose own file is written.
pub async fn apply_tick<S>(store: &S, own: LatestUpdate, now: Ts) -> Result<Applied, HandlerError>
where
    S: LatestStore + ObjectStore,
{
    let tick = TickId {
        tier: own.tier,
        tick_ts: own.tick_ts,
    };
    if !batched(tick.tier) {
        store.apply_latest(&[own]).await?;
        return Ok(Applied {
            ticks: 1,
            unreadable: 0,
        });
    }
    let period = chrono::Duration::seconds(period_s(tick.tier));
    let last = store.get_latest(tick.tier).await?.map(|l| l.tick_ts);
    let minute_written = last.is_some_and(|l| l >= period_start(tick));
    let late = now >= next_writing_tick(tick) - LATE_MARGIN;
    if !writes(tick) && !late && minute_written {
        return Ok(Applied::default());
    }
    let mut updates = vec![own];
    let mut unreadable = 0;
    // Back to the last write (or a period when that is newer than this tick: a late tick
    // whose writing tick ran), or as far as can be counted before the tier's first write.
    if last.is_none_or(|l| l < tick.tick_ts) {
        let span = chrono::Duration::seconds(
            i64::from(tick.tier.interval_s()) * (READ_BACK_TICKS as i64 + 1),
        );
        let from = last.map_or(tick.tick_ts - span, |l| l.min(tick.tick_ts - period));
        match read_back(store, tick.tier, from, tick.tick_ts).await {
            Ok((back, bad)) => {
                updates.extend(back);
                unreadable = bad;
            }
            Err(e) => {
                tracing::warn!(tier = %tick.tier, tick = %tick.tick_ts, error = %e, "Latest values: reading the tick files back failed; the next tick writes them");
                return Ok(Applied::default());
            }
        }
    }
    store.apply_latest(&updates).await?;
    Ok(Applied {
        ticks: updates.len(),
        unreadable,
    })
}

/// The tier's Latest values as of its newest tick at `now`: the last write, with the ticks of
/// the last period after it (which a writing tick has not applied yet) added from their files,
/// the markets due at the newest of them being the tier's members. A tick file that cannot be
/// read is left out (logged).
pub async fn current<S>(
    store: &S,
    tier: Tier,
    now: Ts,
) -> polytape_store::Result<Option<LatestTier>>
where
    S: LatestStore + ObjectStore + MarketStore,
{
    let stored = store.get_latest(tier).await?;
    if !batched(tier) {
        return Ok(stored);
    }
    let through = TickId::floor(tier, now).next().tick_ts;
    let period_ago = through - chrono::Duration::seconds(period_s(tier) + 1);
    let from = stored
        .as_ref()
        .map_or(period_ago, |l| l.tick_ts.max(period_ago));
    let back = match read_back(store, tier, from, through).await {
        Ok((back, _)) => back,
        Err(e) => {
            tracing::warn!(%tier, error = %e, "Latest values: the ticks since the last write could not be read; showing the last write");
            Vec::new()
        }
    };
    let Some(newest) = back.first().map(|u| u.tick_ts) else {
        return Ok(stored);
    };
    let due: BTreeSet<String> = store
        .markets_due(tier, newest)
        .await?
        .into_iter()
        .map(|m| m.condition_id)
        .collect();
    let mut latest = stored.unwrap_or_else(|| LatestTier::empty(tier));
    for mut u in back.into_iter().rev() {
        u.members = due
            .iter()
            .cloned()
            .chain(u.rows.iter().map(|r| r.condition_id.clone()))
            .collect();
        latest.apply(&u);
    }
    Ok(Some(latest))
}

/// The first tick of `tick`'s period (the writing tick of its minute).
fn period_start(tick: TickId) -> Ts {
    let period = period_s(tick.tier);
    let secs = tick.tick_ts.timestamp();
    tick.tick_ts - chrono::Duration::seconds(secs.rem_euclid(period))
}

/// The next tick of `tick`'s tier that writes, after `tick`.
fn next_writing_tick(tick: TickId) -> Ts {
    period_start(tick) + chrono::Duration::seconds(period_s(tick.tier))
}

/// The contributions of the tier's ticks after `from` and before `before`, newest first (at
/// most [`READ_BACK_TICKS`]), from their `snapshots` files, and how many files were skipped: a
/// tick without a file wrote nothing (skipped, failed, or no market); a file that cannot be
/// read for a reason no retry cures, or decoded, is skipped, logged and counted; a failure a
/// retry may cure is returned. Each holds its rows' markets as members (see the module's note).
async fn read_back<S: ObjectStore>(
    store: &S,
    tier: Tier,
    from: Ts,
    before: Ts,
) -> polytape_store::Result<(Vec<LatestUpdate>, usize)> {
    let mut out = Vec::new();
    let mut unreadable = 0;
    let mut t = TickId::floor(tier, before - chrono::Duration::milliseconds(1));
    let mut looked = 0;
    while t.tick_ts > from && t.tick_ts < before && looked < READ_BACK_TICKS {
        looked += 1;
        let key = keys::snapshots(&t);
        let decoded = match store.get_object(&key).await {
            Ok(None) => None,
            Ok(Some(bytes)) => Some(parquet::decode_latest_entries(&bytes)),
            Err(e) if e.is_retryable() => return Err(e),
            Err(e) => Some(Err(e)),
        };
        match decoded {
            None => {}
            Some(Ok(rows)) => out.push(LatestUpdate {
                tier,
                tick_ts: t.tick_ts,
                members: rows.iter().map(|r| r.condition_id.clone()).collect(),
                rows,
            }),
            Some(Err(e)) => {
                tracing::warn!(key, error = %e, "Latest values: tick file unreadable, skipped");
                unreadable += 1;
            }
        }
        t = TickId::floor(tier, t.tick_ts - chrono::Duration::seconds(1));
    }
    Ok((out, unreadable))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tick(tier: Tier, s: &str) -> TickId {
        TickId {
            tier,
            tick_ts: s.parse().expect("a time"),
        }
    }

    #[test]
    fn given_a_tier_then_the_first_tick_of_each_minute_writes_and_slower_tiers_every_tick() {
        let writing: Vec<bool> = ["12:00:00", "12:00:15", "12:00:30", "12:00:45", "12:01:00"]
            .iter()
            .map(|s| writes(tick(Tier::T4, &format!("2026-11-20T{s}Z"))))
            .collect();
        assert_eq!(writing, [true, false, false, false, true]);
        assert!(!writes(tick(Tier::T3, "2026-11-20T12:00:30Z")));
        for tier in [Tier::T0, Tier::T1, Tier::T2] {
            let t = TickId::floor(tier, "2026-11-20T12:07:00Z".parse().unwrap());
            assert!(writes(t) && writes(t.next()), "{tier} writes every tick");
        }
        assert_eq!(
            next_writing_tick(tick(Tier::T4, "2026-11-20T12:00:45Z")),
            "2026-11-20T12:01:00Z".parse::<Ts>().unwrap()
        );
        assert_eq!(
            next_writing_tick(tick(Tier::T4, "2026-11-20T12:01:00Z")),
            "2026-11-20T12:02:00Z".parse::<Ts>().unwrap()
        );
    }
}

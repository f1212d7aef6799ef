//! The Data API trades of one market inside a time window, without offset paging past the
//! API's cap: the newest page of `[start, end]` is taken, then the window is narrowed to
//! `[start, oldest second seen]` until a page comes back short. The oldest second is asked
//! again, so a transaction (one block, one second) cut by a page is always served whole by the
//! next; the feed's keys make the overlap harmless (see [`crate::key`]) as long as each page
//! is keyed on its own — a page is one *group*, and ordinals are counted per group. Only a
//! single second holding more than a page is read by offset, its pages forming one group, and
//! past 10,000 rows that second is reported incomplete.

use polytape_polymarket::{FetchError, PolymarketClient, TradesPage, TradesWindow};

/// The Data API's largest offset (beyond it: 400).
const MAX_OFFSET: u32 = 10_000;

/// Pages keyed together: one page, or the pages of one second read by offset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Group {
    /// The group may end inside its oldest second (a full page): that second is whole only in
    /// the next group.
    pub cut: bool,
    pub bodies: Vec<String>,
}

/// What a backfill fetched.
#[derive(Debug, Default)]
pub struct Backfilled {
    /// The response bodies, as received (for the tape), in the order fetched, by group.
    pub groups: Vec<Group>,
    pub rows: usize,
    pub requests: u32,
    /// False when a single second held more rows than the API serves.
    pub complete: bool,
}

impl Backfilled {
    /// The tape text of this backfill: `[{"cut":…,"sizes_only":…,"bodies":[<body>,…]},…]`,
    /// one object per group, the bodies verbatim. `sizes_only` marks a size lookup (G3).
    pub fn tape_text(&self, sizes_only: bool) -> String {
        let groups: Vec<String> = self
            .groups
            .iter()
            .map(|g| {
                format!(
                    "{{\"cut\":{},\"sizes_only\":{sizes_only},\"bodies\":[{}]}}",
                    g.cut,
                    g.bodies.join(",")
                )
            })
            .collect();
        format!("[{}]", groups.join(","))
    }
}

/// The trades of `condition_id` with block time in `[start_s, end_s]`.
pub async fn backfill(
    client: &PolymarketClient,
    condition_id: &str,
    start_s: i64,
    end_s: i64,
    limit: u32,
) -> Result<Backfilled, FetchError> {
    let limit = limit.clamp(1, MAX_OFFSET);
    let mut out = Backfilled {
        complete: true,
        ..Backfilled::default()
    };
    let mut end = end_s;
    loop {
        let page = fetch(client, condition_id, start_s, end, limit, 0, &mut out).await?;
        // Rows the decoder refused still took a place in the page.
        let full = (page.rows.len() + page.rejected) as u32 >= limit;
        let oldest = page
            .rows
            .iter()
            .filter_map(|r| r.timestamp.map(|t| t.timestamp()))
            .min();
        let Some(oldest) = oldest.filter(|_| full) else {
            out.groups.push(Group {
                cut: false,
                bodies: vec![page.body],
            });
            return Ok(out);
        };
        if oldest >= end {
            // One second holds a whole page: read that second by offset, as one group.
            let mut group = vec![page.body];
            let mut offset = limit;
            loop {
                if offset > MAX_OFFSET {
                    out.complete = false;
                    break;
                }
                let page = fetch(client, condition_id, end, end, limit, offset, &mut out).await?;
                let short = ((page.rows.len() + page.rejected) as u32) < limit;
                group.push(page.body);
                if short {
                    break;
                }
                offset += limit;
            }
            out.groups.push(Group {
                cut: false,
                bodies: group,
            });
            if end <= start_s {
                return Ok(out);
            }
            end -= 1;
        } else {
            out.groups.push(Group {
                cut: true,
                bodies: vec![page.body],
            });
            end = oldest;
        }
    }
}

async fn fetch(
    client: &PolymarketClient,
    condition_id: &str,
    start_s: i64,
    end_s: i64,
    limit: u32,
    offset: u32,
    out: &mut Backfilled,
) -> Result<TradesPage, FetchError> {
    out.requests += 1;
    let page = client
        .trades_page(&TradesWindow {
            condition_id,
            start_s,
            end_s,
            limit,
            offset,
        })
        .await?;
    out.rows += page.rows.len();
    Ok(page)
}

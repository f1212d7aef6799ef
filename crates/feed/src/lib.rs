//! polytape's live feed without its sockets: what the shard supervisor (ws-fargate, and
//! `polytape run`) does with what it hears.
//!
//! [`Feed`] takes WebSocket frames and Data API backfill pages, each with its receive time, and
//! produces each trade once ([`key`]) with the token's top of book just before it and the
//! guards' flags (G1 stale, G3 size from the Data API, G5 divergent), whale events with the mid
//! 1 and 5 minutes after, and per market a rolling one-hour window in first-outcome terms with
//! its coverage ([`window`]), from which [`Feed::flow`] gives the 17 flow and whale values of
//! every market covered the whole hour.

pub mod backfill;
mod fast;
pub mod feed;
pub mod key;
pub mod memory;
pub mod queue;
pub mod shard;
pub mod supervisor;
pub mod window;

pub use feed::{Asset, Control, Feed, FeedConfig, FeedCounts, Output};
pub use key::{IdentityDigest, TradeIdentity, TradeKey};
pub use memory::Remembered;
pub use polytape_core::live::{SizeSource, Source, StoredTrade, WhaleEvent};

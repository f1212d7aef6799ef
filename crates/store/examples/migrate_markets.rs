//! Brings the Markets items of an existing stack into the `active_by_end` index after the
//! `by_tier` index was replaced (docs/aws.md, "Markets table"): sets `live` on every active
//! market that lacks it and drops the old `tier_key`. Idempotent; prints how many items it
//! changed. Uses the ordinary AWS configuration (profile, region, `AWS_ENDPOINT_URL` for moto):
//!
//! ```sh
//! POLYTAPE_MARKETS_TABLE=<table> cargo run -p polytape-store --features aws --example migrate_markets
//! ```

use polytape_store::aws::{provision, MARKETS_TABLE_VAR};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let table = std::env::var(MARKETS_TABLE_VAR)
        .map_err(|_| format!("{MARKETS_TABLE_VAR} must name the Markets table"))?;
    let cfg = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let changed = provision::migrate_markets(&cfg, &table).await?;
    println!("{table}: {changed} item(s) migrated");
    Ok(())
}

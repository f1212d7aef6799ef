//! Recording transitions: every change of a tracked market (discovered, tier change, closed,
//! resolved, expired, delisted, relisted, unresolved) goes to the Ops state, for the status
//! API, and to the `tier_transitions` Parquet table, for Athena and DuckDB — one file per run
//! that recorded any, keyed by the run's writer and time so a retried run replaces it.

use crate::error::HandlerError;
use polytape_core::ops::TierTransition;
use polytape_core::Ts;
use polytape_store::{keys, parquet, ObjectStore, TransitionStore};

/// Records the `transitions` one run of `writer` made at `at` — the Parquet file first, then
/// the state — after the markets they describe were written. A run that fails between the
/// market writes and this loses these transitions (its retry finds nothing left to change): a
/// known gap, logged by the caller's failed run. Nothing to record, nothing written.
pub async fn record<S>(
    store: &S,
    writer: &str,
    at: Ts,
    transitions: &[TierTransition],
) -> Result<(), HandlerError>
where
    S: TransitionStore + ObjectStore,
{
    if transitions.is_empty() {
        return Ok(());
    }
    let encoded = parquet::encode_transitions(transitions)?;
    store
        .put_object(
            &keys::transitions(writer, at),
            encoded.bytes,
            polytape_store::parquet::CONTENT_TYPE,
        )
        .await?;
    store.put_transitions(transitions).await?;
    Ok(())
}

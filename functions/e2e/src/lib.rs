//! Tests only: see `tests/watch.rs`.

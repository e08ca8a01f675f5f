//! Layer tar writing (deterministic, one streaming pass for diff_id,
//! compression and blob digest) and safe extraction into snapshots.

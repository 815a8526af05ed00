//! Presentational pieces of the explorer; `app` owns the state.

pub mod branch_view;
pub mod costs;
pub mod feature_grid;
pub mod header;
pub mod layer_list;
pub mod status_bar;
pub mod top5;

pub use convlens_core::analytics::{human_count as count, human_macs as macs};

/// Bytes in decimal units, as the CLI and the model catalogue give them.
pub fn bytes(n: u64) -> String {
    format!("{}B", count(n))
}

pub fn shape(s: &[usize]) -> String {
    s.iter().skip(1).map(|d| d.to_string()).collect::<Vec<_>>().join("x")
}

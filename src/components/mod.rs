//! Presentational pieces of the explorer; `app` owns the state.

pub mod branch_view;
pub mod costs;
pub mod feature_grid;
pub mod header;
pub mod layer_list;
pub mod status_bar;
pub mod top5;

pub use convlens_core::analytics::human_count as count;

pub fn bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.2} GB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

pub fn shape(s: &[usize]) -> String {
    s.iter().skip(1).map(|d| d.to_string()).collect::<Vec<_>>().join("x")
}

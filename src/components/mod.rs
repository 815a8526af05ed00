//! Presentational pieces of the explorer; `app` owns the state.

pub mod branch_view;
pub mod costs;
pub mod explain_panel;
pub mod feature_grid;
pub mod header;
pub mod layer_list;
pub mod status_bar;
pub mod top5;
pub mod vis_panel;

pub use convlens_core::analytics::{human_count as count, human_macs as macs};

/// Bytes in decimal units, as the CLI and the model catalogue give them.
pub fn bytes(n: u64) -> String {
    format!("{}B", count(n))
}

pub fn shape(s: &[usize]) -> String {
    s.iter().skip(1).map(|d| d.to_string()).collect::<Vec<_>>().join("x")
}

/// A layer name that wraps after '/' and '_' rather than mid-word ("inception_4a/ 5x5_ reduce").
pub fn breakable(name: &str) -> yew::Html {
    use yew::html;
    let mut parts = Vec::new();
    let mut start = 0;
    for (i, ch) in name.char_indices() {
        if ch == '/' || ch == '_' {
            parts.push(&name[start..=i]);
            start = i + 1;
        }
    }
    parts.push(&name[start..]);
    html! { <>{ for parts.into_iter().map(|p| html! { <>{ p }<wbr /></> }) }</> }
}

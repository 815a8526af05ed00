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

/// An `Rc` that compares by address. Yew compares props and hook dependencies with
/// `PartialEq`, and `Rc`'s compares contents: a layer's tiles (megabytes) were compared byte by
/// byte several times per render, 100+ ms a pass on the page's main thread.
#[derive(Debug)]
pub struct Same<T>(pub std::rc::Rc<T>);

impl<T> Same<T> {
    pub fn new(v: T) -> Self {
        Same(std::rc::Rc::new(v))
    }
}

impl<T> Clone for Same<T> {
    fn clone(&self) -> Self {
        Same(self.0.clone())
    }
}

impl<T> PartialEq for Same<T> {
    fn eq(&self, other: &Self) -> bool {
        std::rc::Rc::ptr_eq(&self.0, &other.0)
    }
}

impl<T> std::ops::Deref for Same<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

//! An Inception (or Fire) module's branches side by side: label, shape, multiply-adds and the
//! first channels of each branch's output, then the concatenation.

use crate::components::Same;
use std::rc::Rc;

use wasm_bindgen::JsCast;
use web_sys::HtmlCanvasElement;
use yew::prelude::*;

use super::{macs, shape};
use crate::imaging::paint_rgba;
use crate::protocol::{LayerMaps, ModuleInfo, Visualized};

/// Channels shown per branch.
const PREVIEW: usize = 16;

#[derive(Properties, PartialEq)]
pub struct Props {
    pub module: ModuleInfo,
    pub concat_shape: Vec<usize>,
    /// The branch outputs' activations, when the model has run.
    pub maps: Vec<Same<LayerMaps>>,
    pub on_select: Callback<usize>,
    /// Per branch: what its output's most active channel looks for (done or forming).
    #[prop_or_default]
    pub visuals: Vec<Option<Rc<Visualized>>>,
    /// Per branch: (output layer name, channel) the visual is of.
    #[prop_or_default]
    pub visual_targets: Vec<Option<(String, usize)>>,
    pub on_visualize: Callback<()>,
}

#[function_component(BranchView)]
pub fn branch_view(p: &Props) -> Html {
    let root = use_node_ref();
    let show_all = use_state(|| false);
    {
        let root = root.clone();
        let maps = p.maps.clone();
        let visuals = p.visuals.clone();
        use_effect_with((p.maps.clone(), *show_all, p.visuals.clone()), move |_| {
            let Some(el) = root.cast::<web_sys::Element>() else { return };
            let Ok(list) = el.query_selector_all("canvas[data-branch-layer]") else { return };
            for i in 0..list.length() {
                let Some(cv) = list.item(i).and_then(|n| n.dyn_into::<HtmlCanvasElement>().ok()) else { continue };
                let layer: usize = cv.dataset().get("branchLayer").and_then(|s| s.parse().ok()).unwrap_or(usize::MAX);
                let ch: usize = cv.dataset().get("channel").and_then(|s| s.parse().ok()).unwrap_or(0);
                if let Some(m) = maps.iter().find(|m| m.layer == layer) {
                    let _ = paint_rgba(&cv, m.tiles.tile(ch), m.tiles.tile_w, m.tiles.tile_h);
                }
            }
            let Ok(list) = el.query_selector_all("canvas[data-visual]") else { return };
            for i in 0..list.length() {
                let Some(cv) = list.item(i).and_then(|n| n.dyn_into::<HtmlCanvasElement>().ok()) else { continue };
                let k: usize = cv.dataset().get("visual").and_then(|s| s.parse().ok()).unwrap_or(usize::MAX);
                if let Some(Some(v)) = visuals.get(k) {
                    cv.set_width(v.side as u32);
                    cv.set_height(v.side as u32);
                    let _ = paint_rgba(&cv, &v.rgba, v.side, v.side);
                }
            }
        });
    }
    let total: u64 = p.module.branches.iter().map(|b| b.macs).sum();
    html! {
        <section class="panel branch-panel" data-testid="branch-view" ref={root}>
            <div class="grid-head">
                <h2>{ format!("{} — {} module, {} branches", p.module.name, p.module.kind, p.module.branches.len()) }</h2>
                <button data-testid="branch-show-all" aria-pressed={show_all.to_string()}
                    onclick={{ let s = show_all.clone(); Callback::from(move |_| s.set(!*s)) }}>
                    { if *show_all { format!("first {PREVIEW} channels per branch") } else { "all channels".to_string() } }
                </button>
                <button data-testid="branches-look-for" onclick={{ let cb = p.on_visualize.clone(); Callback::from(move |_| cb.emit(())) }}
                    title={format!("one visualization per branch: its output's most active channel on this picture, {} steps each at {} px", crate::app::visualize::STEPS, crate::app::visualize::SIZE)}>
                    { "What do the branches look for?" }
                </button>
            </div>
            <p class="muted small">{ "Each tile: one channel of the branch's output on its own colour scale, dark = low, bright = high. Click a branch's name to open it." }</p>
            <div class="branches">
                { for p.module.branches.iter().enumerate().map(|(k, b)| {
                    let channels = b.shape.get(1).copied().unwrap_or(0);
                    let shown = if *show_all { channels } else { channels.min(PREVIEW) };
                    let share = if total > 0 { 100.0 * b.macs as f64 / total as f64 } else { 0.0 };
                    let out = b.output_layer;
                    let on_select = p.on_select.clone();
                    html! {
                        <div class="branch" data-branch={b.label.clone()}>
                            <button class="branch-title" onclick={Callback::from(move |_| if let Some(l) = out { on_select.emit(l) })}>
                                { &b.label }
                            </button>
                            <div class="muted small">{ format!("{} · {} ({share:.0}%)", shape(&b.shape), macs(b.macs)) }</div>
                            <div class="muted small" data-testid="branch-count">{ format!("{shown} of {channels} channels") }</div>
                            if let Some(v) = p.visuals.get(k).cloned().flatten() {
                                <figure class="branch-visual" data-testid="branch-visual" data-done={v.done.to_string()}>
                                    <canvas data-visual={k.to_string()} role="img"
                                        aria-label={format!("what {} looks for", p.visual_targets.get(k).cloned().flatten().map_or(b.label.clone(), |(l, c)| format!("{l} channel {c}")))} />
                                    <figcaption class="muted small">{
                                        match p.visual_targets.get(k).cloned().flatten() {
                                            Some((_, c)) if v.done => format!("channel {c}: {:.1} → {:.1}", v.objective_start, v.objective),
                                            Some((_, c)) => format!("channel {c}: step {} of {}", v.step, v.steps),
                                            None => String::new(),
                                        }
                                    }</figcaption>
                                </figure>
                            } else if p.visual_targets.get(k).cloned().flatten().is_some() {
                                <p class="muted small">{ "waiting…" }</p>
                            }
                            <div class="mini-grid">
                                if let Some(l) = out {
                                    if p.maps.iter().any(|m| m.layer == l) {
                                        { for (0..shown).map(|ch| html! {
                                            <canvas class="mini" data-branch-layer={l.to_string()} data-channel={ch.to_string()} role="img" aria-label={format!("{} channel {ch}", b.label)} />
                                        }) }
                                    }
                                }
                            </div>
                        </div>
                    }
                }) }
            </div>
            if p.module.kind == "Residual" {
                <p class="concat">{ format!("→ added element-wise, F(x) + x: {} ({} in the block)", shape(&p.concat_shape), macs(total)) }</p>
            } else {
                <p class="concat">{ format!("→ concatenated along channels: {} ({} in the module)", shape(&p.concat_shape), macs(total)) }</p>
            }
        </section>
    }
}

//! The heatmap for a clicked class over the photo as the network saw it: the method switch
//! (what each one is and costs), the opacity, Grad-CAM's layer, the deletion curve as a small
//! plot with its area, and the exports.

use std::rc::Rc;

use wasm_bindgen::JsCast;
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement};
use yew::prelude::*;

use crate::imaging::{copy_canvas, paint_channel};
use crate::protocol::Explained;

/// (key, label, what it is and what it costs), in the order of the switch.
pub const METHODS: &[(&str, &str, &str)] = &[
    ("cam", "CAM", "the classifier's weights on the last pooled map; free (no backward pass), only for heads that average-pool into the classifier"),
    ("gradcam", "Grad-CAM", "channels weighed by the mean gradient of the score; one backward pass down to the layer"),
    ("saliency", "Saliency", "the gradient of the score for each input pixel; a backward pass to the input"),
    ("guided", "Guided backprop", "as saliency, but ReLUs pass only positive gradients: sharper edges; a backward pass to the input"),
    ("occlusion", "Occlusion", "a grey 32-px square slid in 16-px steps, the drop in probability; ~170 forward passes, frozen pictures only"),
];

#[derive(Properties, PartialEq)]
pub struct Props {
    pub label: String,
    pub method: String,
    pub opacity: f64,
    pub at_selected_layer: bool,
    pub result: Option<Rc<Explained>>,
    pub running: bool,
    /// The explained pass's forward time, to say what the explanation cost next to it.
    pub forward_ms: Option<f64>,
    pub input: Option<HtmlCanvasElement>,
    pub canvas: NodeRef,
    pub on_method: Callback<String>,
    pub on_opacity: Callback<f64>,
    pub on_selected_layer: Callback<bool>,
    pub on_close: Callback<()>,
    pub on_png: Callback<()>,
    pub on_raw_png: Callback<()>,
    pub on_npy: Callback<()>,
}

/// The heatmap's peak in input pixels (x, y), for the page and its tests.
fn peak(e: &Explained, side: f64) -> Option<(f64, f64)> {
    let i = (0..e.heatmap.len()).max_by(|&a, &b| e.heatmap[a].total_cmp(&e.heatmap[b]))?;
    Some((((i % e.w) as f64 + 0.5) * side / e.w as f64, ((i / e.w) as f64 + 0.5) * side / e.h as f64))
}

/// The heatmap (colour-mapped on its own range, smoothly upsampled) over `input` at `opacity`;
/// without an input, the heatmap alone.
pub fn paint(out: &HtmlCanvasElement, input: Option<&HtmlCanvasElement>, e: &Explained, opacity: f64) -> Result<(), String> {
    if let Some(inp) = input {
        copy_canvas(inp, out)?;
    }
    let small = crate::imaging::new_canvas(e.w as u32, e.h as u32)?;
    let (lo, hi) = convlens_core::viz::value_range(&e.heatmap);
    paint_channel(&small, &e.heatmap, e.w, e.h, lo, hi)?;
    let ctx: CanvasRenderingContext2d = out.get_context("2d").map_err(crate::imaging::js_err)?.ok_or("no context")?.dyn_into().map_err(|_| "context")?;
    ctx.set_image_smoothing_enabled(true);
    ctx.set_global_alpha(opacity);
    ctx.draw_image_with_html_canvas_element_and_dw_and_dh(&small, 0.0, 0.0, out.width() as f64, out.height() as f64).map_err(crate::imaging::js_err)?;
    ctx.set_global_alpha(1.0);
    Ok(())
}

#[function_component(ExplainPanel)]
pub fn explain_panel(p: &Props) -> Html {
    {
        let canvas = p.canvas.clone();
        let (result, input, opacity) = (p.result.clone(), p.input.clone(), p.opacity);
        use_effect_with((p.result.clone(), p.input.clone(), (p.opacity * 100.0) as i64), move |_| {
            if let (Some(out), Some(e)) = (canvas.cast::<HtmlCanvasElement>(), result.as_ref().filter(|e| e.error.is_none())) {
                let _ = paint(&out, input.as_ref(), e, opacity);
            }
        });
    }
    let side = p.input.as_ref().map_or(224, |c| c.width()) as f64;
    let on_method = p.on_method.reform(|e: Event| e.target_unchecked_into::<web_sys::HtmlSelectElement>().value());
    let on_opacity = p.on_opacity.reform(|e: InputEvent| e.target_unchecked_into::<web_sys::HtmlInputElement>().value_as_number() / 100.0);
    let on_layer = p.on_selected_layer.reform(|e: Event| e.target_unchecked_into::<web_sys::HtmlInputElement>().checked());
    let click = |cb: &Callback<()>| cb.reform(|_: MouseEvent| ());
    let about = METHODS.iter().find(|m| m.0 == p.method).map_or("", |m| m.2);
    let ok = p.result.as_ref().filter(|e| e.error.is_none() && e.method == p.method);
    let pk = ok.and_then(|e| peak(e, side));
    html! {
        <section class="panel explain-panel" data-testid="explain" aria-busy={p.running.to_string()}>
            <div class="grid-head">
                <h2>{ format!("Why {}?", p.label) }</h2>
                <button aria-label="close the heatmap" onclick={click(&p.on_close)}>{ "×" }</button>
            </div>
            <div class="explain-controls">
                <label>{ "Method " }
                    <select data-testid="explain-method" aria-label="explanation method" onchange={on_method}>
                        { for METHODS.iter().map(|(k, label, _)| html! { <option value={*k} selected={p.method == *k}>{ *label }</option> }) }
                    </select>
                </label>
                <label>{ "Opacity " }
                    <input type="range" min="0" max="100" value={((p.opacity * 100.0) as i64).to_string()} aria-label="heatmap opacity" oninput={on_opacity} />
                </label>
                if p.method == "gradcam" {
                    <label><input type="checkbox" checked={p.at_selected_layer} onchange={on_layer} />{ " at the selected layer" }</label>
                }
            </div>
            <p class="muted small">{ about }</p>
            if let Some(e) = p.result.as_ref().and_then(|e| e.error.clone()) {
                <p class="untrained" role="status">{ e }</p>
            }
            <canvas ref={p.canvas.clone()} width={side.to_string()} height={side.to_string()} class="explain-canvas" data-testid="heatmap"
                data-method={ok.map(|e| e.method.clone()).unwrap_or_default()} data-answer={ok.map(|e| e.id.to_string()).unwrap_or_default()}
                data-peak-x={pk.map(|p| format!("{:.1}", p.0)).unwrap_or_default()} data-peak-y={pk.map(|p| format!("{:.1}", p.1)).unwrap_or_default()}
                role="img" aria-label={format!("heatmap for {} over the photo", p.label)} />
            if let Some(e) = ok {
                <p class="small">
                    { format!("{}x{} map{} · {:.0} ms", e.w, e.h, e.layer.as_ref().map_or(String::new(), |l| format!(" at {l}")), e.ms) }
                    if let Some(f) = p.forward_ms.filter(|f| *f > 0.0) {
                        <span class="muted">{ format!(" ({} the forward pass)", times(e.ms / f)) }</span>
                    }
                    if let Some(b) = &e.backward {
                        <span class="muted" data-testid="backward-ran">{ format!(" · {b}") }</span>
                    }
                    if let Some(auc) = e.deletion_auc {
                        { format!(" · deletion AUC {auc:.3}") }<span class="muted">{ " (lower: the map found what mattered)" }</span>
                    }
                </p>
                if e.deletion.len() > 1 {
                    { deletion_plot(&e.deletion) }
                }
                <div class="explain-exports">
                    <button onclick={click(&p.on_png)}>{ "Export PNG" }</button>
                    <button onclick={click(&p.on_raw_png)}>{ "Export raw PNG" }</button>
                    <button onclick={click(&p.on_npy)}>{ "Export .npy" }</button>
                </div>
            } else if p.running {
                <p class="muted small">{ "Computing…" }</p>
            }
        </section>
    }
}

/// The deletion curve: probability (0..1, up) as pixels are removed (left to right).
fn deletion_plot(curve: &[f32]) -> Html {
    let (w, h) = (200.0, 60.0);
    let max = curve.iter().fold(1e-6f32, |m, &v| m.max(v));
    let points: Vec<String> =
        curve.iter().enumerate().map(|(i, &v)| format!("{:.1},{:.1}", i as f64 * w / (curve.len() - 1) as f64, h - v as f64 / max as f64 * h)).collect();
    html! {
        <svg class="deletion-plot" viewBox={format!("0 0 {w} {h}")} width="200" height="60" role="img"
            aria-label="deletion curve: the class probability as the most important pixels are removed">
            <polyline points={points.join(" ")} fill="none" stroke="currentColor" stroke-width="2" />
        </svg>
    }
}

/// A ratio as "0.03x" or "2.4x": under one, two decimals (a 1 ms backward beside a 30 ms pass
/// read "0.0x" with one).
fn times(r: f64) -> String {
    if r < 1.0 { format!("{r:.2}x") } else { format!("{r:.1}x") }
}

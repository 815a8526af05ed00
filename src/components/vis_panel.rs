//! The image a channel responds to most, as it forms: progress, the objective climbing, Stop,
//! and the export.

use std::rc::Rc;

use web_sys::HtmlCanvasElement;
use yew::prelude::*;

use crate::imaging::paint_rgba;
use crate::protocol::Visualized;

#[derive(Properties, PartialEq)]
pub struct Props {
    pub layer: String,
    pub channel: usize,
    pub latest: Option<Rc<Visualized>>,
    pub on_stop: Callback<()>,
    pub on_close: Callback<()>,
    pub on_png: Callback<()>,
}

#[function_component(VisPanel)]
pub fn vis_panel(p: &Props) -> Html {
    let canvas = use_node_ref();
    {
        let canvas = canvas.clone();
        use_effect_with(p.latest.clone(), move |latest| {
            if let (Some(c), Some(v)) = (canvas.cast::<HtmlCanvasElement>(), latest.as_ref().filter(|v| !v.rgba.is_empty())) {
                let _ = paint_rgba(&c, &v.rgba, v.side, v.side);
            }
        });
    }
    let click = |cb: &Callback<()>| cb.reform(|_: MouseEvent| ());
    let v = p.latest.as_ref();
    let running = v.is_none_or(|v| !v.done);
    let side = v.map_or(crate::app::visualize::SIZE, |v| v.side.max(1));
    html! {
        <section class="panel vis-panel" data-testid="visualize" aria-busy={running.to_string()}>
            <div class="grid-head">
                <h2>{ format!("What channel {} of {} looks for", p.channel, p.layer) }</h2>
                <button aria-label="close the visualization" onclick={click(&p.on_close)}>{ "×" }</button>
            </div>
            <p class="muted small">
                { "An image optimized to excite this channel, computed here: a smooth random start, climbed step by step (jittered, scaled and rotated a little each time so only robust patterns survive)." }
            </p>
            <canvas ref={canvas} class="vis-canvas" width={side.to_string()} height={side.to_string()} role="img" data-testid="vis-image"
                data-step={v.map(|v| v.step.to_string()).unwrap_or_default()} data-done={v.is_some_and(|v| v.done).to_string()}
                aria-label={format!("what channel {} of {} looks for", p.channel, p.layer)} />
            if let Some(v) = v {
                if let Some(e) = &v.error {
                    <p class="untrained" role="status">{ e.clone() }</p>
                } else {
                    <p class="small" data-testid="vis-objective">
                        <progress aria-label="visualization progress" max={v.steps.to_string()} value={v.step.to_string()} />
                        { format!(" step {} of {} at {} px · mean{} {:.2} → {:.2} · {:.1} s", v.step, v.steps, v.side, if v.before_relu { " before its ReLU" } else { "" }, v.objective_start, v.objective, v.ms / 1e3) }
                        if v.stopped { { " · stopped" } }
                        <span class="muted" data-testid="vis-engine">{ format!(" · on {}", v.engine) }</span>
                    </p>
                }
            } else {
                <p class="muted small">{ "Starting…" }</p>
            }
            <div class="explain-exports">
                if running { <button onclick={click(&p.on_stop)}>{ "Stop" }</button> }
                <button onclick={click(&p.on_png)} disabled={v.is_none_or(|v| v.rgba.is_empty())}>{ "Export PNG" }</button>
            </div>
        </section>
    }
}

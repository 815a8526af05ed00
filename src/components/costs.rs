//! What each layer costs: parameters, multiply-adds, activation memory, measured time, with
//! bars, totals, and the seed's lessons computed from this model.

use yew::prelude::*;

use super::{bytes, count, macs, shape};
use crate::protocol::ModelSummary;

#[derive(Properties, PartialEq)]
pub struct Props {
    pub summary: std::rc::Rc<ModelSummary>,
    pub layer_ms: Vec<f64>,
    /// How the times were taken (CPU clock, GPU timestamp queries, ...).
    pub layer_clock: String,
    pub selected: Option<usize>,
    pub on_select: Callback<usize>,
}

fn bar(v: f64, max: f64, class: &'static str) -> Html {
    let pct = if max > 0.0 { 100.0 * v / max } else { 0.0 };
    html! { <span class={classes!("cbar", class)}><span style={format!("width:{pct:.1}%")}></span></span> }
}

#[function_component(Costs)]
pub fn costs(p: &Props) -> Html {
    let s = &p.summary;
    let maxp = s.layers.iter().map(|l| l.params).max().unwrap_or(0) as f64;
    let maxm = s.layers.iter().map(|l| l.macs).max().unwrap_or(0) as f64;
    let maxa = s.layers.iter().map(|l| l.activation_bytes).max().unwrap_or(0) as f64;
    let maxt = p.layer_ms.iter().cloned().fold(0.0, f64::max);
    let total_ms: f64 = p.layer_ms.iter().sum();
    html! {
        <section class="panel costs-panel" aria-label="costs">
            <h2>{ "Costs" }</h2>
            <p class="totals">
                { format!("{} parameters ({} of weights) · {} · {} of activations if every layer is kept",
                    count(s.params), bytes(s.weight_bytes), macs(s.macs), bytes(s.activation_bytes)) }
                if total_ms > 0.0 { { format!(" · last run {total_ms:.0} ms") } }
                if !p.layer_clock.is_empty() { <span class="muted" data-testid="layer-clock">{ format!(" · layer times: {}", p.layer_clock) }</span> }
            </p>
            <div class="lessons">
                { for s.lessons.iter().map(|l| html! {
                    <article class="lesson"><h3>{ &l.title }</h3><p>{ &l.detail }</p></article>
                }) }
            </div>
            <div class="table-scroll" tabindex="0" role="region" aria-label="costs per layer (scrolls)">
            <table class="costs">
                <thead><tr>
                    <th>{ "layer" }</th><th>{ "op" }</th><th>{ "output" }</th><th>{ "params" }</th>
                    <th>{ "MACs" }</th><th>{ "activations" }</th><th>{ "RF" }</th><th>{ "ms" }</th>
                </tr></thead>
                <tbody>
                    { for s.layers.iter().enumerate().map(|(i, l)| {
                        let on_select = p.on_select.clone();
                        let on_button = p.on_select.clone();
                        let ms = p.layer_ms.get(i).copied().unwrap_or(0.0);
                        html! {
                            <tr class={classes!((p.selected == Some(i)).then_some("selected"))} onclick={Callback::from(move |_| on_select.emit(i))}>
                                <td class="name"><button class="row-link" aria-current={(p.selected == Some(i)).then_some("true")}
                                    onclick={Callback::from(move |e: MouseEvent| { e.stop_propagation(); on_button.emit(i) })}>{ super::breakable(&l.name) }</button></td>
                                <td>{ &l.op }</td>
                                <td>{ shape(&l.shape) }</td>
                                <td>{ count(l.params) }{ bar(l.params as f64, maxp, "p") }</td>
                                <td>{ count(l.macs) }{ bar(l.macs as f64, maxm, "m") }</td>
                                <td>{ bytes(l.activation_bytes) }{ bar(l.activation_bytes as f64, maxa, "a") }</td>
                                <td>{ if l.rf_global { "global".to_string() } else { format!("{}", l.rf_size[0]) } }</td>
                                <td>{ layer_ms(ms) }{ bar(ms, maxt, "t") }</td>
                            </tr>
                        }
                    }) }
                </tbody>
            </table>
            </div>
        </section>
    }
}

/// A layer's time: two decimals under a millisecond, where most of SqueezeNet's layers are
/// (one decimal rounded half of them to 0.0 or 0.1, and their sum by a third).
fn layer_ms(ms: f64) -> String {
    match ms {
        ms if ms <= 0.0 => "–".into(),
        ms if ms < 1.0 => format!("{ms:.2}"),
        ms => format!("{ms:.1}"),
    }
}

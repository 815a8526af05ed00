use yew::prelude::*;

use crate::protocol::HeadResult;

#[derive(Properties, PartialEq)]
pub struct Props {
    pub heads: Vec<HeadResult>,
    pub untrained: bool,
    pub softmax_applied: bool,
    /// These belong to the previous picture; the current one is still running.
    pub stale: bool,
    /// (head, class) clicked: explain it.
    pub on_pick: Callback<(usize, usize)>,
    /// The (head, class) being explained, shown as pressed.
    pub picked: Option<(usize, usize)>,
}

#[function_component(Top5)]
pub fn top5(p: &Props) -> Html {
    let labels = convlens_core::imagenet_labels();
    let list = |h: &HeadResult, testid: &'static str| {
        html! {
            <ol class="top5" data-testid={testid} aria-label={h.name.clone()}>
                { for h.top.iter().map(|&(i, prob)| {
                    let label = labels.get(i).copied().unwrap_or("?").to_string();
                    let pct = format!("{:.1}%", prob * 100.0);
                    let head = h.output;
                    let on_pick = p.on_pick.clone();
                    let pressed = p.picked == Some((head, i));
                    html! {
                        <li title={label.clone()} data-class={i.to_string()} data-prob={prob.to_string()}>
                            <button class="label class-pick" aria-pressed={pressed.to_string()} aria-label={format!("{label}: {pct}; show why")}
                                onclick={Callback::from(move |_| on_pick.emit((head, i)))}>{ label.clone() }</button>
                            <span class="bar"><span style={format!("width:{:.1}%", prob * 100.0)}></span></span>
                            <span class="pct">{ pct }</span>
                        </li>
                    }
                }) }
            </ol>
        }
    };
    let main = p.heads.iter().find(|h| !h.auxiliary);
    html! {
        <section class={classes!("panel", "top5-panel", p.stale.then_some("stale"))} aria-busy={p.stale.to_string()} data-stale={p.stale.to_string()}>
            <h2>{ "Top-5" }if p.stale { <span class="muted small">{ " · previous picture, updating…" }</span> }</h2>
            if p.untrained {
                <p class="untrained" role="alert">{ "UNTRAINED weights: seeded random values, the classes below mean nothing." }</p>
            }
            if let Some(h) = main { { list(h, "top5") } } else { <p class="muted">{ "Drop an image or start the camera." }</p> }
            if p.heads.iter().any(|h| h.auxiliary) {
                <div class="aux-heads">
                    { for p.heads.iter().filter(|h| h.auxiliary).map(|h| html! {
                        <div><h3>{ h.name.clone() }</h3>{ list(h, "top5-aux") }</div>
                    }) }
                </div>
            }
            if main.is_some() {
                <p class="muted small">{ "Click a class to see which pixels made the network say it." }</p>
                <p class="muted small">{ if p.softmax_applied { "The model outputs logits; softmax applied." } else { "The model ends in a softmax." } }</p>
            }
        </section>
    }
}

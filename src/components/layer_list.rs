//! The network map: layers in order, grouped into modules (Inception, Fire) that expand into
//! their branches, or into blocks ending at each pooling layer (VGG).

use std::collections::HashSet;

use yew::prelude::*;

use super::{macs, shape};
use crate::protocol::ModelSummary;

#[derive(Properties, PartialEq)]
pub struct Props {
    pub summary: std::rc::Rc<ModelSummary>,
    pub selected: Option<usize>,
    pub on_select: Callback<usize>,
}

#[function_component(LayerList)]
pub fn layer_list(p: &Props) -> Html {
    let expanded = use_state(HashSet::<usize>::new);
    let s = &p.summary;
    let mut rows = Vec::new();
    let mut block = 1;
    let mut seen_module = HashSet::new();
    for (i, l) in s.layers.iter().enumerate() {
        if let Some(m) = l.module {
            if seen_module.insert(m) {
                let module = &s.modules[m];
                let open = expanded.contains(&m) || p.selected.is_some_and(|sel| s.layers[sel].module == Some(m) && sel != module.concat);
                let toggle = {
                    let expanded = expanded.clone();
                    Callback::from(move |_| {
                        let mut e = (*expanded).clone();
                        if !e.remove(&m) {
                            e.insert(m);
                        }
                        expanded.set(e);
                    })
                };
                rows.push(html! {
                    <li class="module-row">
                        <button class="module-toggle" aria-expanded={open.to_string()} onclick={toggle}>
                            { if open { "▾ " } else { "▸ " } }{ format!("{} ({})", module.name, module.kind) }
                            <span class="muted">{ format!(" {} branches", module.branches.len()) }</span>
                        </button>
                    </li>
                });
            }
            let module = &s.modules[m];
            let open = expanded.contains(&m) || p.selected.is_some_and(|sel| s.layers[sel].module == Some(m) && sel != module.concat);
            if i != module.concat && !open {
                continue;
            }
        }
        let on_select = p.on_select.clone();
        let class = classes!("layer", (p.selected == Some(i)).then_some("selected"), l.module.map(|_| "in-module"));
        let branch = l.module.and_then(|m| s.modules[m].branches.iter().find(|b| b.layers.contains(&i)).map(|b| b.label.clone()));
        rows.push(html! {
            <li>
                <button {class} data-layer={i.to_string()} onclick={Callback::from(move |_| on_select.emit(i))}
                    aria-current={(p.selected == Some(i)).then_some("true")}>
                    <span class="name">{ super::breakable(&l.name) }</span>
                    if let Some(b) = branch { <span class="branch-tag">{ b }</span> }
                    <span class="op">{ &l.op }</span>
                    <span class="dims">{ shape(&l.shape) }</span>
                    if l.macs > 0 { <span class="cost">{ macs(l.macs) }</span> }
                </button>
            </li>
        });
        if s.modules.is_empty() && l.op.contains("Pool") && !l.op.contains("Global") {
            rows.push(html! { <li class="block-end" aria-hidden="true">{ format!("end of block {block}") }</li> });
            block += 1;
        }
    }
    html! {
        <nav class="panel layer-panel" aria-label="layers">
            <h2>{ "Layers" }<span class="muted small">{ " ↑/↓ to walk" }</span></h2>
            <ul data-testid="layer-list" class="layer-list">{ for rows }</ul>
        </nav>
    }
}

//! Every channel of the selected layer as a tile, one colour scale per tile or shared, a
//! colour bar, hover for channel/value and the receptive field on the input, click to enlarge
//! over the faded input. Tiles arrive coloured from the worker (on the GPU when the pass ran
//! there); this only paints them.

use crate::components::Same;

use wasm_bindgen::JsCast;
use web_sys::HtmlCanvasElement;
use yew::prelude::*;

use crate::imaging::{copy_canvas, paint_channel, paint_rgba};
use crate::protocol::{LayerInfo, LayerMaps};

#[derive(Clone, Debug, PartialEq)]
pub struct Hover {
    pub channel: usize,
    pub y: usize,
    pub x: usize,
    /// None in live mode (values stay on the worker).
    pub value: Option<f32>,
}

/// CSS px per tile: tiles share a ~440x440 px area, 16 channels get ~110 px each, 512 get the
/// 28 px minimum. The app asks the worker for live tiles of this size.
pub fn tile_px(channels: usize) -> usize {
    ((440.0 * 440.0 / (channels as f64).max(1.0)).sqrt().clamp(28.0, 140.0)) as usize
}

#[derive(Properties, PartialEq)]
pub struct Props {
    pub maps: Same<LayerMaps>,
    pub layer: LayerInfo,
    pub input: Option<HtmlCanvasElement>,
    pub shared_scale: bool,
    pub sort_by_mean: bool,
    pub selected_channel: Option<usize>,
    pub on_channel: Callback<Option<usize>>,
    /// "What does this channel look for?"
    pub on_visualize: Callback<usize>,
    /// Shown in the enlarged channel: the user's photos that excite it most.
    #[prop_or_default]
    pub examples: Html,
}

/// Per channel (mean, min, max), as the worker measured them at full resolution.
fn channel_stats(m: &LayerMaps) -> Vec<(f32, f32, f32)> {
    m.tiles.stats.iter().map(|s| (s[2], s[0], s[1])).collect()
}

fn dims(m: &LayerMaps) -> (usize, usize) {
    match m.shape[..] {
        [_, c, h, w] => (c, h * w),
        [_, c] => (c, 1),
        _ => (m.tiles.stats.len().max(1), 1),
    }
}

fn hw(m: &LayerMaps) -> (usize, usize) {
    match m.shape[..] {
        [_, _, h, w] => (h, w),
        _ => (1, 1),
    }
}

/// Paints every tile after each render that changed the maps or their order.
#[hook]
fn use_paint_tiles(grid_ref: NodeRef, maps: Same<LayerMaps>, sort_by_mean: bool) {
    use_effect_with((maps, sort_by_mean), move |(maps, _)| {
        if let Some(grid) = grid_ref.cast::<web_sys::Element>() {
            let t = &maps.tiles;
            if let Ok(list) = grid.query_selector_all("canvas[data-channel]") {
                for i in 0..list.length() {
                    let Some(cv) = list.item(i).and_then(|n| n.dyn_into::<HtmlCanvasElement>().ok()) else { continue };
                    let ch: usize = cv.dataset().get("channel").and_then(|s| s.parse().ok()).unwrap_or(0);
                    let _ = paint_rgba(&cv, t.tile(ch), t.tile_w, t.tile_h);
                }
            }
        }
    });
}

/// Paints the enlarged channel over the faded input: at full resolution from the values when
/// they are here (on the `shared` range, else its own), else its tile.
#[hook]
fn use_paint_enlarged(big_ref: NodeRef, under_ref: NodeRef, maps: Same<LayerMaps>, input: Option<HtmlCanvasElement>, selected: Option<usize>, shared: Option<(f32, f32)>) {
    use_effect_with((maps, selected, shared), move |(maps, sel, shared)| {
        let (Some(ch), Some(big)) = (*sel, big_ref.cast::<HtmlCanvasElement>()) else { return };
        let (_, plane) = dims(maps);
        let (h, w) = hw(maps);
        match &maps.data {
            Some(data) if (ch + 1) * plane <= data.len() => {
                let s = &maps.tiles.stats[ch];
                let (lo, hi) = shared.unwrap_or((s[0], s[1]));
                let _ = paint_channel(&big, &data[ch * plane..(ch + 1) * plane], w, h, lo, hi);
            }
            _ => {
                let _ = paint_rgba(&big, maps.tiles.tile(ch), maps.tiles.tile_w, maps.tiles.tile_h);
            }
        }
        if let (Some(inp), Some(under)) = (input, under_ref.cast::<HtmlCanvasElement>()) {
            let _ = copy_canvas(&inp, &under);
        }
    });
}

/// The input region the hovered pixel sees, as (top, left, height, width) in percent of `side`.
fn rf_box_percent(l: &LayerInfo, hv: &Hover, side: usize) -> (f64, f64, f64, f64) {
    if l.rf_global {
        return (0.0, 0.0, 100.0, 100.0);
    }
    let top = (l.rf_start[0] + (hv.y * l.rf_stride[0]) as isize).max(0) as f64;
    let left = (l.rf_start[1] + (hv.x * l.rf_stride[1]) as isize).max(0) as f64;
    let bottom = ((l.rf_start[0] + (hv.y * l.rf_stride[0] + l.rf_size[0]) as isize).max(0) as f64).min(side as f64);
    let right = ((l.rf_start[1] + (hv.x * l.rf_stride[1] + l.rf_size[1]) as isize).max(0) as f64).min(side as f64);
    let pct = |v: f64| 100.0 * v / side as f64;
    (pct(top), pct(left), pct((bottom - top).max(0.0)), pct((right - left).max(0.0)))
}

// The one place the grid's markup lives; the effects and geometry are the hooks above.
#[function_component(FeatureGrid)]
pub fn feature_grid(p: &Props) -> Html {
    let grid_ref = use_node_ref();
    let big_ref = use_node_ref();
    let under_ref = use_node_ref();
    let hover = use_state(|| None::<Hover>);
    // The tile with the keyboard focus: its numbers in the readout (hover wins over it).
    let focused = use_state(|| None::<usize>);
    let stats = use_memo(p.maps.clone(), |m| channel_stats(m));
    let (c, _) = dims(&p.maps);
    let (h, w) = hw(&p.maps);
    let global = use_memo(p.maps.clone(), |m| {
        m.tiles.shared.unwrap_or_else(|| m.tiles.stats.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), s| (lo.min(s[0]), hi.max(s[1]))))
    });
    let order: Vec<usize> = {
        let mut o: Vec<usize> = (0..c).collect();
        if p.sort_by_mean {
            o.sort_by(|&a, &b| stats[b].0.total_cmp(&stats[a].0));
        }
        o
    };
    use_paint_tiles(grid_ref.clone(), p.maps.clone(), p.sort_by_mean);
    use_paint_enlarged(big_ref.clone(), under_ref.clone(), p.maps.clone(), p.input.clone(), p.selected_channel, p.shared_scale.then_some(*global));
    let on_move = {
        let hover = hover.clone();
        let maps = p.maps.clone();
        Callback::from(move |e: MouseEvent| {
            let Some(cv) = e.target().and_then(|t| t.dyn_into::<HtmlCanvasElement>().ok()) else { return };
            let ch: usize = cv.dataset().get("channel").and_then(|s| s.parse().ok()).unwrap_or(0);
            let rect = cv.get_bounding_client_rect();
            let (h, w) = hw(&maps);
            let fx = ((e.client_x() as f64 - rect.left()) / rect.width()).clamp(0.0, 0.999);
            let fy = ((e.client_y() as f64 - rect.top()) / rect.height()).clamp(0.0, 0.999);
            let (x, y) = ((fx * w as f64) as usize, (fy * h as f64) as usize);
            let (_, plane) = dims(&maps);
            let value = maps.data.as_ref().and_then(|d| d.get(ch * plane + y * w + x).copied());
            hover.set(Some(Hover { channel: ch, y, x, value }));
        })
    };
    let on_leave = {
        let hover = hover.clone();
        Callback::from(move |_| hover.set(None))
    };

    // Receptive field of the hovered pixel, as a box over the input (percent of the side).
    let side = p.input.as_ref().map_or(224, |c| c.width() as usize).max(1);
    let rf_box = hover.as_ref().map(|hv| rf_box_percent(&p.layer, hv, side));
    let input_ref = use_node_ref();
    {
        let input_ref = input_ref.clone();
        let input = p.input.clone();
        use_effect_with(p.input.clone(), move |_| {
            if let (Some(inp), Some(cv)) = (input, input_ref.cast::<HtmlCanvasElement>()) {
                let _ = copy_canvas(&inp, &cv);
            }
        });
    }

    let tile_px = tile_px(c);
    let (tw, th) = (p.maps.tiles.tile_w, p.maps.tiles.tile_h);
    // Live (no values here), a tile's label and tooltip name the channel only: its statistics
    // change every frame, and 64 labels rewritten 30 times a second are main-thread work the
    // pass competes with, and noise to a screen reader.
    let live = p.maps.data.is_none();
    let describe = |ch: usize| {
        if live {
            format!("channel {ch} (live; freeze to read its values)")
        } else {
            format!("channel {ch}, mean {:.3}, range {:.3} to {:.3}", stats[ch].0, stats[ch].1, stats[ch].2)
        }
    };
    let readout = match (&*hover, *focused) {
        (Some(hv), _) => format!(
            "channel {} at ({}, {}): {} — sees {}x{} input px",
            hv.channel,
            hv.y,
            hv.x,
            hv.value.map_or_else(|| "live (freeze to read values)".to_string(), |v| format!("{v:.4}")),
            p.layer.rf_size[0].min(side),
            p.layer.rf_size[1].min(side)
        ),
        (None, Some(ch)) if ch < c => format!("{} — Enter to enlarge", describe(ch)),
        _ => "Hover or focus a tile: its values and the input region a pixel sees.".into(),
    };
    let close = {
        let on_channel = p.on_channel.clone();
        Callback::from(move |_: MouseEvent| on_channel.emit(None))
    };
    let (scale_lo, scale_hi) = *global;
    html! {
        <section class="panel grid-panel">
            <div class="grid-head">
                <h2>{ format!("{} — {} channels of {}x{}", p.layer.name, c, h, w) }</h2>
                <div class="colorbar" role="img" aria-label={format!("colour scale: dark is low, bright is high; layer values {scale_lo:.3} to {scale_hi:.3}")}>
                    <span data-testid="scale-lo">{ format!("{scale_lo:.3}") }</span>
                    <span class="ramp" title={if p.maps.tiles.drawn_on_gpu { "tiles coloured on the GPU" } else { "tiles coloured on the CPU" }}></span>
                    <span data-testid="scale-hi">{ format!("{scale_hi:.3}") }</span>
                    <span class="muted">{ if p.shared_scale { "one scale for all tiles" } else { "each tile stretched to its own min..max" } }</span>
                </div>
            </div>
            <p class="how-to muted small">
                { "Each tile is one channel's feature map: bright where the channel responds strongly, dark where it does not. Click a tile (or Enter) to enlarge it over the photo; ↑/↓ walk the layers, ←/→ the channels, Esc closes; drop a photo anywhere." }
            </p>
            <div class="grid-and-input">
                <div data-testid="feature-grid" class="feature-grid" ref={grid_ref} role="group" aria-label={format!("{} channels of {}", c, p.layer.name)}
                    style={format!("grid-template-columns: repeat(auto-fill, minmax({tile_px}px, 1fr))")}>
                    { for order.iter().map(|&ch| {
                        let on_channel = p.on_channel.clone();
                        let sel = p.selected_channel == Some(ch);
                        let focus_in = { let focused = focused.clone(); Callback::from(move |_: FocusEvent| focused.set(Some(ch))) };
                        let focus_out = { let focused = focused.clone(); Callback::from(move |_: FocusEvent| focused.set(None)) };
                        html! {
                            <button key={ch} class={classes!("tile", sel.then_some("selected"))} aria-label={describe(ch)} aria-pressed={sel.to_string()}
                                data-tile={ch.to_string()} onfocus={focus_in} onblur={focus_out}
                                onclick={Callback::from(move |_| on_channel.emit(if sel { None } else { Some(ch) }))}>
                                <canvas data-channel={ch.to_string()} width={tw.to_string()} height={th.to_string()}
                                    title={if live { format!("channel {ch}") } else { format!("channel {ch}: mean {:.3}, {:.3}..{:.3}", stats[ch].0, stats[ch].1, stats[ch].2) }}
                                    onmousemove={on_move.clone()} onmouseleave={on_leave.clone()} />
                            </button>
                        }
                    }) }
                </div>
                <aside class="input-view">
                    <div class="input-frame">
                        <canvas ref={input_ref} class="input-canvas" role="img" aria-label="the model's input: the photo as the network sees it" />
                        if let Some((t, l, hh, ww)) = rf_box {
                            <div class="rf-box" style={format!("top:{t:.2}%;left:{l:.2}%;height:{hh:.2}%;width:{ww:.2}%")}></div>
                        }
                    </div>
                    <p class="hover-readout" data-testid="readout" aria-live="polite">{ readout }</p>
                </aside>
            </div>
            if let Some(ch) = p.selected_channel.filter(|&ch| ch < c) {
                <div class="enlarged" data-testid="enlarged" role="dialog" aria-label={format!("channel {ch} enlarged")}>
                    <div class="enlarged-head">
                        <h3>{ format!("channel {ch}") }</h3>
                        <button class="close" aria-label="close the enlarged channel" onclick={close}>{ "×" }</button>
                    </div>
                    <div class="overlay">
                        <canvas ref={under_ref} class="under" />
                        <canvas ref={big_ref} class="over" />
                    </div>
                    <p class="muted small">{ format!("{} · over the photo; ←/→ other channels, Esc closes", describe(ch)) }</p>
                    <button data-testid="visualize-channel" onclick={{ let cb = p.on_visualize.clone(); Callback::from(move |_: MouseEvent| cb.emit(ch)) }}>
                        { "What does this channel look for?" }
                    </button>
                    { p.examples.clone() }
                </div>
            }
        </section>
    }
}

//! "Dataset examples": for every channel of every layer, the k photos of a collection that
//! excite it most (its largest value anywhere in the map) and where (the unit whose receptive
//! field is the patch to show). Built one photo at a time by the CLI (`convlens index`) or the
//! browser worker, saved in one versioned file (docs/INDEX_FORMAT.md), and merged: top-k per
//! channel is associative, so shards of a collection indexed apart merge into exactly the
//! index of the whole (ties broken by photo name, then position, so the order of arrival never
//! matters).
//!
//! Photos are carried as the caller encodes them (JPEG thumbnails of the crop the network saw);
//! only photos that some channel still ranks are kept.

use std::cmp::Ordering;
use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::graph::{Graph, ValueId};
use crate::Tensor;

/// The file's first bytes.
pub const MAGIC: &[u8; 8] = b"CLINDEX\0";
/// Bumped on any change to the layout below; readers refuse other versions.
pub const VERSION: u32 = 1;
/// Bytes per ranked entry: score f32, photo u32, y u16, x u16 (little-endian).
const ENTRY_BYTES: usize = 12;
/// A photo slot no entry has filled yet.
const EMPTY: u32 = u32::MAX;

/// One layer the index ranks: a 4-D map [1, C, H, W].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexLayer {
    pub name: String,
    pub channels: usize,
    pub h: usize,
    pub w: usize,
}

/// One photo: its name (a path relative to the indexed folder) and its thumbnail's bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexedPhoto {
    pub name: String,
    pub thumb: Vec<u8>,
}

/// One ranked entry: the channel's largest value on the photo and where it is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hit {
    pub score: f32,
    pub photo: u32,
    pub y: u16,
    pub x: u16,
}

const NO_HIT: Hit = Hit { score: f32::NEG_INFINITY, photo: EMPTY, y: 0, x: 0 };

/// What the JSON header of the file holds.
#[derive(Serialize, Deserialize)]
struct Header {
    model: String,
    /// The model's input shape: thumbnails are crops of this size.
    input: Vec<usize>,
    k: usize,
    /// What a score is, in words: readers show it.
    statistic: String,
    layers: Vec<IndexLayer>,
    /// Photos in file order, with their thumbnails' byte lengths.
    photos: Vec<(String, usize)>,
}

const STATISTIC: &str = "the channel's largest value over the map";

#[derive(Clone, Debug, PartialEq)]
pub struct ExampleIndex {
    pub model: String,
    pub input: Vec<usize>,
    pub k: usize,
    pub layers: Vec<IndexLayer>,
    pub photos: Vec<IndexedPhoto>,
    /// Per layer: channels x k entries, each channel's best first; unfilled slots are `NO_HIT`.
    hits: Vec<Vec<Hit>>,
}

impl ExampleIndex {
    /// An empty index of `graph`'s spatial layers (every activation shaped [1, C, H, W]).
    pub fn new(graph: &Graph, k: usize) -> Result<Self> {
        if k == 0 {
            return Err(Error::Input("an index keeps at least one photo per channel (k >= 1)".into()));
        }
        let layers = Self::layers_of(graph);
        let hits = layers.iter().map(|l| vec![NO_HIT; l.channels * k]).collect();
        Ok(ExampleIndex { model: graph.name.clone(), input: graph.shape(graph.input).to_vec(), k, layers, photos: Vec::new(), hits })
    }

    /// The layers an index of `graph` ranks, as its header lists them: an index fits a model
    /// when these are equal (without making the empty ranking `new` does).
    pub fn layers_of(graph: &Graph) -> Vec<IndexLayer> {
        Self::layer_values(graph)
            .into_iter()
            .map(|v| {
                let s = graph.shape(v);
                IndexLayer { name: graph.value(v).name.clone(), channels: s[1], h: s[2], w: s[3] }
            })
            .collect()
    }

    /// The values an index of `graph` ranks, in node order.
    pub fn layer_values(graph: &Graph) -> Vec<ValueId> {
        graph.nodes.iter().map(|n| n.output).filter(|&v| matches!(graph.shape(v), [1, _, _, _])).collect()
    }

    /// Ranks one photo: `value(layer index)` is its activation of `layers[i]`.
    pub fn add<'a>(&mut self, name: &str, thumb: Vec<u8>, value: &dyn Fn(usize) -> Option<&'a Tensor>) -> Result<()> {
        if self.photos.iter().any(|p| p.name == name) {
            return Err(Error::Input(format!("'{name}' is in the index already")));
        }
        let photo = self.photos.len() as u32;
        self.photos.push(IndexedPhoto { name: name.to_string(), thumb });
        for (li, layer) in self.layers.iter().enumerate() {
            let t = value(li).ok_or_else(|| Error::Input(format!("no activation of '{}' for '{name}'", layer.name)))?;
            if t.shape != [1, layer.channels, layer.h, layer.w] {
                return Err(Error::Shape(format!("'{}' is {:?}, the index expects [1, {}, {}, {}]", layer.name, t.shape, layer.channels, layer.h, layer.w)));
            }
            let plane = layer.h * layer.w;
            for c in 0..layer.channels {
                // The first largest in scan order; NaN never wins.
                let (mut best, mut at) = (f32::NEG_INFINITY, 0);
                for (i, &v) in t.data[c * plane..(c + 1) * plane].iter().enumerate() {
                    if v > best {
                        (best, at) = (v, i);
                    }
                }
                let hit = Hit { score: best, photo, y: (at / layer.w) as u16, x: (at % layer.w) as u16 };
                let slots = &mut self.hits[li][c * self.k..(c + 1) * self.k];
                insert(slots, hit, &self.photos);
            }
        }
        // Photos no channel ranks any more are dropped as the collection streams through.
        if self.photos.len() % 64 == 0 {
            self.compact();
        }
        Ok(())
    }

    /// The channel's ranked entries, best first: (photo, score, unit y, unit x).
    pub fn top(&self, layer: usize, channel: usize) -> Vec<(&IndexedPhoto, f32, usize, usize)> {
        let k = self.k;
        self.hits[layer][channel * k..(channel + 1) * k]
            .iter()
            .filter(|h| h.photo != EMPTY)
            .map(|h| (&self.photos[h.photo as usize], h.score, h.y as usize, h.x as usize))
            .collect()
    }

    /// The index of the layer named `name`.
    pub fn layer(&self, name: &str) -> Option<usize> {
        self.layers.iter().position(|l| l.name == name)
    }

    /// Keeps only ranked photos, in name order (so equal content is equal bytes).
    fn compact(&mut self) {
        let mut used = vec![false; self.photos.len()];
        for h in self.hits.iter().flatten().filter(|h| h.photo != EMPTY) {
            used[h.photo as usize] = true;
        }
        let mut order: Vec<usize> = (0..self.photos.len()).filter(|&i| used[i]).collect();
        order.sort_by(|&a, &b| self.photos[a].name.cmp(&self.photos[b].name));
        let mut new_id = vec![EMPTY; self.photos.len()];
        for (n, &old) in order.iter().enumerate() {
            new_id[old] = n as u32;
        }
        let mut old = std::mem::take(&mut self.photos);
        self.photos = order.iter().map(|&i| std::mem::replace(&mut old[i], IndexedPhoto { name: String::new(), thumb: Vec::new() })).collect();
        for h in self.hits.iter_mut().flatten().filter(|h| h.photo != EMPTY) {
            h.photo = new_id[h.photo as usize];
        }
    }

    /// One index of several made of the same model (shards of one collection): each channel's
    /// best k over all of them. A photo name in two parts must be the same photo.
    pub fn merge(parts: Vec<ExampleIndex>) -> Result<ExampleIndex> {
        let mut parts = parts.into_iter();
        let mut out = parts.next().ok_or_else(|| Error::Input("nothing to merge".into()))?;
        for part in parts {
            if part.model != out.model || part.layers != out.layers || part.k != out.k || part.input != out.input {
                return Err(Error::Input(format!(
                    "indexes of different models or settings cannot merge ('{}', k {} and '{}', k {})",
                    out.model, out.k, part.model, part.k
                )));
            }
            let mut id = HashMap::new();
            for (i, p) in part.photos.into_iter().enumerate() {
                let at = match out.photos.iter().position(|q| q.name == p.name) {
                    Some(j) if out.photos[j].thumb != p.thumb => return Err(Error::Input(format!("'{}' is a different photo in two indexes", p.name))),
                    Some(j) => j,
                    None => {
                        out.photos.push(p);
                        out.photos.len() - 1
                    }
                };
                id.insert(i as u32, at as u32);
            }
            let k = out.k;
            for (li, layer_hits) in part.hits.iter().enumerate() {
                for (slot, h) in layer_hits.iter().enumerate().filter(|(_, h)| h.photo != EMPTY) {
                    let c = slot / k;
                    let hit = Hit { photo: id[&h.photo], ..*h };
                    let slots = &mut out.hits[li][c * k..(c + 1) * k];
                    if !slots.iter().any(|s| s.photo == hit.photo) {
                        insert(slots, hit, &out.photos);
                    }
                }
            }
            out.compact();
        }
        out.compact();
        Ok(out)
    }

    /// The file: MAGIC, VERSION (u32), the JSON header's length (u32) and the header, every
    /// layer's entries, then the thumbnails (docs/INDEX_FORMAT.md).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut me = self.clone();
        me.compact();
        let header = Header {
            model: me.model.clone(),
            input: me.input.clone(),
            k: me.k,
            statistic: STATISTIC.into(),
            layers: me.layers.clone(),
            photos: me.photos.iter().map(|p| (p.name.clone(), p.thumb.len())).collect(),
        };
        let json = serde_json::to_vec(&header).expect("a header always serializes");
        let mut out = Vec::with_capacity(16 + json.len() + me.photos.iter().map(|p| p.thumb.len()).sum::<usize>());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&(json.len() as u32).to_le_bytes());
        out.extend_from_slice(&json);
        for h in me.hits.iter().flatten() {
            out.extend_from_slice(&h.score.to_le_bytes());
            out.extend_from_slice(&h.photo.to_le_bytes());
            out.extend_from_slice(&h.y.to_le_bytes());
            out.extend_from_slice(&h.x.to_le_bytes());
        }
        for p in &me.photos {
            out.extend_from_slice(&p.thumb);
        }
        out
    }

    /// Reads a file `to_bytes` wrote; a clear error for anything else or a truncated one.
    pub fn from_bytes(b: &[u8]) -> Result<ExampleIndex> {
        let bad = |why: &str| Error::Input(format!("not a ConvLens index: {why}"));
        if b.len() < 16 || &b[..8] != MAGIC {
            return Err(bad("it does not start with CLINDEX"));
        }
        let version = u32::from_le_bytes(b[8..12].try_into().expect("4 bytes"));
        if version != VERSION {
            return Err(Error::Input(format!("index format version {version}; this ConvLens reads version {VERSION}")));
        }
        let hlen = u32::from_le_bytes(b[12..16].try_into().expect("4 bytes")) as usize;
        let json = b.get(16..16 + hlen).ok_or_else(|| bad("truncated header"))?;
        let h: Header = serde_json::from_slice(json).map_err(|e| bad(&format!("header: {e}")))?;
        if h.k == 0 {
            return Err(bad("k is 0"));
        }
        let mut at = 16 + hlen;
        let mut hits = Vec::with_capacity(h.layers.len());
        for l in &h.layers {
            let n = l.channels.checked_mul(h.k).ok_or_else(|| bad("layer too large"))?;
            let bytes = b.get(at..at + n * ENTRY_BYTES).ok_or_else(|| bad("truncated entries"))?;
            let layer: Vec<Hit> = bytes
                .chunks_exact(ENTRY_BYTES)
                .map(|e| Hit {
                    score: f32::from_le_bytes(e[0..4].try_into().expect("4")),
                    photo: u32::from_le_bytes(e[4..8].try_into().expect("4")),
                    y: u16::from_le_bytes(e[8..10].try_into().expect("2")),
                    x: u16::from_le_bytes(e[10..12].try_into().expect("2")),
                })
                .collect();
            if layer.iter().any(|e| e.photo != EMPTY && (e.photo as usize >= h.photos.len() || e.y as usize >= l.h || e.x as usize >= l.w)) {
                return Err(bad(&format!("an entry of '{}' points outside the index", l.name)));
            }
            hits.push(layer);
            at += n * ENTRY_BYTES;
        }
        let mut photos = Vec::with_capacity(h.photos.len());
        for (name, len) in h.photos {
            let thumb = b.get(at..at + len).ok_or_else(|| bad("truncated photos"))?.to_vec();
            at += len;
            photos.push(IndexedPhoto { name, thumb });
        }
        if at != b.len() {
            return Err(bad("bytes after the last photo"));
        }
        Ok(ExampleIndex { model: h.model, input: h.input, k: h.k, layers: h.layers, photos, hits })
    }

    /// Bytes the ranking takes in memory (what grows with the model, not with the collection;
    /// the thumbnails of ranked photos come on top).
    pub fn ranking_bytes(&self) -> usize {
        self.hits.iter().map(|l| l.len() * std::mem::size_of::<Hit>()).sum()
    }
}

/// Better first: higher score, then the photo's name, then position (so any arrival order gives
/// the same ranking).
fn better(a: &Hit, b: &Hit, photos: &[IndexedPhoto]) -> Ordering {
    match (a.photo == EMPTY, b.photo == EMPTY) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Greater,
        (false, true) => return Ordering::Less,
        _ => {}
    }
    b.score
        .total_cmp(&a.score)
        .then_with(|| photos[a.photo as usize].name.cmp(&photos[b.photo as usize].name))
        .then_with(|| (a.y, a.x).cmp(&(b.y, b.x)))
}

/// Puts `hit` into the sorted `slots` if it beats the last one.
fn insert(slots: &mut [Hit], hit: Hit, photos: &[IndexedPhoto]) {
    if hit.score.is_nan() {
        return;
    }
    let last = slots.len() - 1;
    if better(&hit, &slots[last], photos) != Ordering::Less {
        return;
    }
    slots[last] = hit;
    let mut i = last;
    while i > 0 && better(&slots[i], &slots[i - 1], photos) == Ordering::Less {
        slots.swap(i, i - 1);
        i -= 1;
    }
}

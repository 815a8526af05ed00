//! How messages cross the worker boundary: gloo-worker's bincode bytes, in a SharedArrayBuffer
//! when the page is cross-origin isolated. A message's bytes (a layer's raw values and tiles, a
//! camera frame) are then shared with the other side instead of copied by the browser's
//! structured clone, whose copy ran on the page's main thread when a pass's result arrived
//! (`MessageEvent.data`: 4.7 ms of main-thread script a SqueezeNet pass, `bench/main_thread_trace.mjs`),
//! on the core the kernels' second thread wants. Without isolation it is gloo's plain encoding.

use gloo::worker::Codec;
use js_sys::{Reflect, SharedArrayBuffer, Uint8Array};
use serde::{Deserialize, Serialize};
use wasm_bindgen::JsValue;

pub struct SharedBincode;

fn isolated() -> bool {
    Reflect::get(&js_sys::global(), &JsValue::from_str("crossOriginIsolated")).map(|v| v.is_truthy()).unwrap_or(false)
}

impl Codec for SharedBincode {
    fn encode<I: Serialize>(input: I) -> JsValue {
        // A message that cannot be encoded is a bug in `protocol`'s types, as in gloo's codec.
        let bytes = bincode::serialize(&input).expect("a worker message that bincode cannot encode");
        if !isolated() {
            return Uint8Array::from(bytes.as_slice()).into();
        }
        let shared = Uint8Array::new(&SharedArrayBuffer::new(bytes.len() as u32));
        shared.copy_from(&bytes);
        shared.into()
    }

    fn decode<O: for<'de> Deserialize<'de>>(input: JsValue) -> O {
        let bytes = Uint8Array::from(input).to_vec();
        bincode::deserialize(&bytes).expect("a worker message that bincode cannot decode")
    }
}

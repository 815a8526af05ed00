//! How messages cross the worker boundary: gloo-worker's bincode bytes, in a SharedArrayBuffer
//! when the page is cross-origin isolated. A message's bytes (a layer's raw values and tiles, a
//! camera frame) are then shared with the other side instead of copied by the browser's
//! structured clone, whose copy ran on the page's main thread when a pass's result arrived
//! (`MessageEvent.data`: 4.7 ms of main-thread script a SqueezeNet pass, `bench/main_thread_trace.mjs`),
//! on the core the kernels' second thread wants. Without isolation it is gloo's plain encoding.
//!
//! A message may carry one JS object beside its bytes (`attach`): a live camera frame, which the
//! browser's structured clone shares with the worker rather than copies (`video_frame`).
//! gloo posts what `encode` returns and hands `decode` what arrives, so the object rides there:
//! `{bytes, attached, key}`; the receiver claims it by the key the message names (`take_received`).

use std::cell::RefCell;
use std::collections::HashMap;

use gloo::worker::Codec;
use js_sys::{Object, Reflect, SharedArrayBuffer, Uint8Array};
use serde::{Deserialize, Serialize};
use wasm_bindgen::{JsCast, JsValue};

pub struct SharedBincode;

#[derive(Default)]
struct Attachments {
    next_key: u64,
    outgoing: Option<(u64, JsValue)>,
    received: HashMap<u64, JsValue>,
}

thread_local! {
    static ATTACHMENTS: RefCell<Attachments> = RefCell::default();
}

/// Sends `object` with the next message encoded on this thread; the key to name in that message.
pub fn attach(object: JsValue) -> u64 {
    ATTACHMENTS.with(|a| {
        let mut a = a.borrow_mut();
        a.next_key += 1;
        let key = a.next_key;
        a.outgoing = Some((key, object));
        key
    })
}

/// The object attached with `key`, if it was not encoded yet (gloo holds a bridge's messages
/// until the worker has started, and encodes them then): the caller keeps it.
pub fn take_unsent(key: u64) -> Option<JsValue> {
    ATTACHMENTS.with(|a| {
        let mut a = a.borrow_mut();
        if a.outgoing.as_ref().is_some_and(|(k, _)| *k == key) {
            a.outgoing.take().map(|(_, o)| o)
        } else {
            None
        }
    })
}

/// The object that arrived attached with `key`, once.
pub fn take_received(key: u64) -> Option<JsValue> {
    ATTACHMENTS.with(|a| a.borrow_mut().received.remove(&key))
}

fn isolated() -> bool {
    Reflect::get(&js_sys::global(), &JsValue::from_str("crossOriginIsolated")).map(|v| v.is_truthy()).unwrap_or(false)
}

impl Codec for SharedBincode {
    fn encode<I: Serialize>(input: I) -> JsValue {
        // A message that cannot be encoded is a bug in `protocol`'s types, as in gloo's codec.
        let bytes = bincode::serialize(&input).expect("a worker message that bincode cannot encode");
        let payload: JsValue = if isolated() {
            let shared = Uint8Array::new(&SharedArrayBuffer::new(bytes.len() as u32));
            shared.copy_from(&bytes);
            shared.into()
        } else {
            Uint8Array::from(bytes.as_slice()).into()
        };
        let Some((key, object)) = ATTACHMENTS.with(|a| a.borrow_mut().outgoing.take()) else { return payload };
        let message = Object::new();
        let _ = Reflect::set(&message, &"bytes".into(), &payload);
        let _ = Reflect::set(&message, &"attached".into(), &object);
        let _ = Reflect::set(&message, &"key".into(), &JsValue::from_f64(key as f64));
        message.into()
    }

    fn decode<O: for<'de> Deserialize<'de>>(input: JsValue) -> O {
        let bytes = if input.is_instance_of::<Uint8Array>() {
            input
        } else {
            let get = |name: &str| Reflect::get(&input, &name.into()).unwrap_or(JsValue::UNDEFINED);
            if let (Some(key), attached) = (get("key").as_f64(), get("attached")) {
                ATTACHMENTS.with(|a| a.borrow_mut().received.insert(key as u64, attached));
            }
            get("bytes")
        };
        let bytes = Uint8Array::from(bytes).to_vec();
        bincode::deserialize(&bytes).expect("a worker message that bincode cannot decode")
    }
}

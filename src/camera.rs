//! The webcam: permission, device choice, a playing <video> to grab frames from.

use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{MediaDeviceInfo, MediaDeviceKind, MediaStream, MediaStreamConstraints, MediaTrackConstraints};

use crate::imaging::js_err;

fn media_devices() -> Result<web_sys::MediaDevices, String> {
    web_sys::window()
        .ok_or("no window")?
        .navigator()
        .media_devices()
        .map_err(|_| "this browser gives no camera access (needs https or localhost)".to_string())
}

/// Asks for the camera (a specific one when `device` is given).
pub async fn open(device: Option<&str>) -> Result<MediaStream, String> {
    let constraints = MediaStreamConstraints::new();
    let video = MediaTrackConstraints::new();
    if let Some(id) = device {
        video.set_device_id(&id.into());
    }
    constraints.set_video(&video.into());
    let promise = media_devices()?.get_user_media_with_constraints(&constraints).map_err(js_err)?;
    let stream = JsFuture::from(promise).await.map_err(|e| {
        let name = js_sys::Reflect::get(&e, &"name".into()).ok().and_then(|n| n.as_string()).unwrap_or_default();
        match name.as_str() {
            "NotAllowedError" | "SecurityError" => "camera permission was denied; the rest of the app keeps working".to_string(),
            "NotFoundError" | "OverconstrainedError" => "no camera found".to_string(),
            _ => format!("cannot open the camera: {}", js_err(e)),
        }
    })?;
    stream.dyn_into().map_err(|_| "not a media stream".into())
}

/// (device id, label) of each camera; labels are empty until permission is granted.
pub async fn cameras() -> Vec<(String, String)> {
    let Ok(md) = media_devices() else { return Vec::new() };
    let Ok(promise) = md.enumerate_devices() else { return Vec::new() };
    let Ok(list) = JsFuture::from(promise).await else { return Vec::new() };
    js_sys::Array::from(&list)
        .iter()
        .filter_map(|d| d.dyn_into::<MediaDeviceInfo>().ok())
        .filter(|d| d.kind() == MediaDeviceKind::Videoinput)
        .enumerate()
        .map(|(i, d)| (d.device_id(), if d.label().is_empty() { format!("camera {}", i + 1) } else { d.label() }))
        .collect()
}

pub fn stop(stream: &MediaStream) {
    for t in stream.get_tracks().iter() {
        if let Ok(track) = t.dyn_into::<web_sys::MediaStreamTrack>() {
            track.stop();
        }
    }
}

//! The kernel pool's helper threads in the browser. std cannot spawn threads on
//! wasm32-unknown-unknown, so in the threaded build (`worker-mt`, compiled with atomics and
//! shared memory by `scripts/build_threaded_worker.sh`) the inference worker starts Web
//! Workers itself: each loads `worker-mt_helper.js` (`worker-mt-relaxed_helper.js` in the
//! relaxed-SIMD build), instantiates this same module on this
//! worker's memory, and parks in `convlens_core::par::helper_loop`. The kernels then split
//! their work across them (`core::par`), and the engine's label counts the threads.
//! The plain build has no shared memory; there this does nothing and the pool has one thread.

/// The helper's script: the glue of this very build, whose module it instantiates.
#[cfg(target_feature = "atomics")]
const HELPER: &str = if cfg!(target_feature = "relaxed-simd") { "./worker-mt-relaxed_helper.js" } else { "./worker-mt_helper.js" };

/// Starts helpers so that `threads` threads (this one included) run the kernels.
/// Returns how many threads the pool will have, or why it stays at one.
pub fn start(threads: usize) -> Result<usize, String> {
    #[cfg(target_feature = "atomics")]
    {
        use wasm_bindgen::JsCast;
        let want = threads.max(1);
        convlens_core::par::set_threads(want);
        let started = convlens_core::par::helpers();
        for _ in started + 1..want {
            let w = web_sys::Worker::new(HELPER).map_err(|e| format!("could not start a helper thread: {e:?}"))?;
            let msg = js_sys::Array::of2(&wasm_bindgen::module(), &wasm_bindgen::memory());
            w.post_message(&msg).map_err(|e| format!("could not start a helper thread: {e:?}"))?;
            // The helper runs until the page goes; nothing else holds it.
            std::mem::forget(w.unchecked_into::<js_sys::Object>());
        }
        Ok(want)
    }
    #[cfg(not(target_feature = "atomics"))]
    {
        let _ = threads;
        Err("this worker build has no shared memory".into())
    }
}

/// A helper's entry point, called by the helper's script (`HELPER`) once the module shares our memory.
#[cfg(target_feature = "atomics")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn convlens_pool_helper() {
    convlens_core::par::helper_loop();
}

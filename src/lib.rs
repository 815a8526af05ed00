//! ConvLens in the browser: the Yew UI (`app`, `components`) on the main thread, inference in
//! a web worker (`worker`), typed messages between them (`protocol`).

pub mod app;
pub mod camera;
pub mod components;
pub mod imaging;
pub mod model_source;
pub mod protocol;
pub mod url_state;
pub mod video_frame;
pub mod worker;
pub mod worker_codec;

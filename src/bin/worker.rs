use gloo::worker::Registrable;

fn main() {
    convlens_app::worker::install_panic_hook();
    convlens_app::worker::InferenceWorker::registrar().encoding::<convlens_app::worker_codec::SharedBincode>().register();
}

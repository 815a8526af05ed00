use gloo::worker::Registrable;

fn main() {
    convlens_app::worker::InferenceWorker::registrar().register();
}

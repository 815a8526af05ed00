//! The ONNX model-zoo files users download: names, sizes, sha256 and mirrors, tried in order.
//! The mirrors are only trusted through the sha256.

pub struct ZooFile {
    /// The built-in name this file serves (`googlenet`, `vgg16`, `squeezenet`).
    pub model: &'static str,
    pub file: &'static str,
    /// Other file names accepted in a models folder for the same weights.
    pub aliases: &'static [&'static str],
    pub bytes: u64,
    pub sha256: &'static str,
    /// Path under the zoo's `validated/vision/classification/`.
    pub zoo_path: &'static str,
}

pub const ZOO: &[ZooFile] = &[
    ZooFile {
        model: "googlenet",
        file: "googlenet-12.onnx",
        aliases: &["inception-v1-12.onnx"],
        bytes: 28_021_836,
        sha256: "c99c507058eaf41de8723408fdda7db8325cb57f0a89f2ee07a716d6e963e14e",
        zoo_path: "inception_and_googlenet/googlenet/model/googlenet-12.onnx",
    },
    ZooFile {
        model: "vgg16",
        file: "vgg16-12.onnx",
        aliases: &[],
        bytes: 553_437_752,
        sha256: "722c42f53ca03a5480296bf8f9c85a151de3eed9ec982d7d2302ff6e2900c67b",
        zoo_path: "vgg/model/vgg16-12.onnx",
    },
    ZooFile {
        model: "squeezenet",
        file: "squeezenet1.1-7.onnx",
        aliases: &["squeezenet1.1.onnx"],
        bytes: 4_956_208,
        sha256: "1eeff551a67ae8d565ca33b572fc4b66e3ef357b0eb2863bb9ff47a918cc4088",
        zoo_path: "squeezenet/model/squeezenet1.1-7.onnx",
    },
];

pub fn zoo_file(model: &str) -> Option<&'static ZooFile> {
    ZOO.iter().find(|z| z.model == model)
}

impl ZooFile {
    /// Download URLs, most likely first.
    pub fn mirrors(&self) -> Vec<String> {
        let stem = self.file.trim_end_matches(".onnx");
        vec![
            format!("https://huggingface.co/onnxmodelzoo/legacy_models/resolve/main/validated/vision/classification/{}", self.zoo_path),
            format!("https://huggingface.co/onnxmodelzoo/{stem}/resolve/main/{}", self.file),
            format!("https://github.com/onnx/models/raw/main/validated/vision/classification/{}", self.zoo_path),
        ]
    }
}

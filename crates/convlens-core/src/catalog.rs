//! The ONNX model-zoo files users download: names, sizes, sha256 and mirrors, tried in order.
//! The mirrors are only trusted through the sha256. A catalogue (`models/catalog.json` next to
//! the app, or `?catalog=URL`) adds mirrors a lab hosts for the built-in models, or models of
//! its own; the built-in list stays the default.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

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

/// One downloadable model file, built in or from a catalogue.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelFile {
    /// The name the model picker and `?model=` use.
    #[serde(rename = "name")]
    pub model: String,
    /// What the picker shows; the name when absent.
    #[serde(default)]
    pub title: Option<String>,
    pub file: String,
    /// Other file names accepted in a served models folder for the same weights.
    #[serde(default)]
    pub aliases: Vec<String>,
    pub bytes: u64,
    pub sha256: String,
    /// Tried in order; a catalogue's mirrors for a built-in model come before the zoo's.
    #[serde(default)]
    pub mirrors: Vec<String>,
}

impl From<&ZooFile> for ModelFile {
    fn from(z: &ZooFile) -> Self {
        ModelFile {
            model: z.model.into(),
            title: None,
            file: z.file.into(),
            aliases: z.aliases.iter().map(|a| a.to_string()).collect(),
            bytes: z.bytes,
            sha256: z.sha256.into(),
            mirrors: z.mirrors(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    models: Vec<ModelFile>,
}

/// A catalogue's entries, each checked: a name, a file, a size, a sha256 of 64 hex digits and
/// at least one mirror (http, https or a path next to the app).
pub fn parse_catalog(json: &[u8]) -> Result<Vec<ModelFile>> {
    let c: CatalogFile = serde_json::from_slice(json).map_err(|e| Error::Input(format!("catalogue: {e}")))?;
    for m in &c.models {
        let bad = |why: &str| Err(Error::Input(format!("catalogue entry '{}': {why}", m.model)));
        if m.model.is_empty() || m.file.is_empty() {
            return bad("a name and a file are needed");
        }
        if m.bytes == 0 {
            return bad("bytes must be the file's size");
        }
        if m.sha256.len() != 64 || !m.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return bad("sha256 must be 64 hex digits");
        }
        if m.mirrors.is_empty() {
            return bad("no mirror to download it from");
        }
    }
    Ok(c.models)
}

/// The built-in models with the catalogues' entries merged in, in order: an entry naming a
/// built-in model with the same file (sha256) puts its mirrors first; one with another file
/// replaces it; other names are added after the built-ins.
pub fn merged(catalogues: &[ModelFile]) -> Vec<ModelFile> {
    let mut out: Vec<ModelFile> = ZOO.iter().map(ModelFile::from).collect();
    for entry in catalogues {
        match out.iter_mut().find(|m| m.model == entry.model) {
            Some(m) if m.sha256.eq_ignore_ascii_case(&entry.sha256) => {
                let mut mirrors = entry.mirrors.clone();
                mirrors.extend(m.mirrors.iter().filter(|u| !entry.mirrors.contains(u)).cloned());
                m.mirrors = mirrors;
                if entry.title.is_some() {
                    m.title = entry.title.clone();
                }
            }
            Some(m) => *m = entry.clone(),
            None => out.push(entry.clone()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "1eeff551a67ae8d565ca33b572fc4b66e3ef357b0eb2863bb9ff47a918cc4088";

    #[test]
    fn a_catalogue_adds_mirrors_and_models_and_refuses_bad_entries() {
        let json = format!(
            r#"{{"models": [
                {{"name": "squeezenet", "file": "squeezenet1.1-7.onnx", "bytes": 4956208, "sha256": "{SHA}", "mirrors": ["https://lab.example/sq.onnx"]}},
                {{"name": "labnet", "title": "Lab net", "file": "labnet.onnx", "bytes": 10, "sha256": "{}", "mirrors": ["models/labnet.onnx"]}}
            ]}}"#,
            "ab".repeat(32)
        );
        let all = merged(&parse_catalog(json.as_bytes()).unwrap());
        assert_eq!(all.len(), ZOO.len() + 1);
        let sq = all.iter().find(|m| m.model == "squeezenet").unwrap();
        assert_eq!(sq.mirrors[0], "https://lab.example/sq.onnx");
        assert_eq!(sq.mirrors.len(), 1 + zoo_file("squeezenet").unwrap().mirrors().len(), "the zoo's mirrors after the lab's");
        assert_eq!(all.last().unwrap().title.as_deref(), Some("Lab net"));
        for (bad, why) in [
            (r#"{"models": [{"name": "x", "file": "x.onnx", "bytes": 1, "sha256": "12", "mirrors": ["a"]}]}"#, "64 hex digits"),
            (r#"{"models": [{"name": "x", "file": "x.onnx", "bytes": 0, "sha256": "00", "mirrors": ["a"]}]}"#, "bytes"),
            (r#"{"models": [{"name": "x", "file": "x.onnx", "bytes": 1, "sha256": "00", "mirrors": []}]}"#, "64 hex digits"),
            (r#"{"modelz": []}"#, "catalogue"),
            ("not json", "catalogue"),
        ] {
            let e = parse_catalog(bad.as_bytes()).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
        let no_mirror = format!(r#"{{"models": [{{"name": "x", "file": "x.onnx", "bytes": 1, "sha256": "{SHA}", "mirrors": []}}]}}"#);
        assert!(parse_catalog(no_mirror.as_bytes()).unwrap_err().to_string().contains("no mirror"));
    }
}

//! One error type for the whole core: every failure a user can cause ends here, as a message.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    #[error("not an ONNX model: {0}")]
    NotOnnx(String),
    #[error("node '{node}' ({op}): {msg}")]
    Node { node: String, op: String, msg: String },
    #[error("unsupported model: {0}")]
    Unsupported(String),
    #[error("shape error: {0}")]
    Shape(String),
    #[error("invalid input: {0}")]
    Input(String),
    #[error("too large: {0}")]
    TooLarge(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn node(node: &str, op: &str, msg: impl Into<String>) -> Self {
        Error::Node { node: node.to_string(), op: op.to_string(), msg: msg.into() }
    }
}

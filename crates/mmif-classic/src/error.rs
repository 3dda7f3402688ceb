/// Errors returned by the fusion methods of this crate.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The two source images do not have the same width and height.
    #[error("source images differ in size: {a_width}x{a_height} vs {b_width}x{b_height}")]
    SizeMismatch { a_width: usize, a_height: usize, b_width: usize, b_height: usize },
    /// A source image has no pixels.
    #[error("source image {which} is empty ({width}x{height})")]
    Empty { which: char, width: usize, height: usize },
    /// A `Plane` whose `data.len()` is not `width * height` (its fields are public).
    #[error("source image {which}: data has {len} values but {width}x{height} needs {expected}")]
    BadPlane { which: char, width: usize, height: usize, len: usize, expected: usize },
    /// A method parameter is out of its valid range.
    #[error("invalid parameter for `{method}`: {msg}")]
    InvalidParameter { method: &'static str, msg: String },
    /// `Method::from_str` got a name it does not know, or a malformed parameter.
    #[error(
        "unknown fusion method `{0}` (`mmif models` lists the methods; parameters are `name:key=value,..` or `lp:N`, `dwt:N`, `weighted:W`)"
    )]
    UnknownMethod(String),
}

pub type Result<T> = std::result::Result<T, Error>;

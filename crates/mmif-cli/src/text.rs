//! Text features for text-guided models (FILM): `--text FILE.npy` for one pair, `--text-dir DIR`
//! (one `<stem>.npy` per pair) in folder mode. The reading lives in `mmif_fuse::text`.

pub use mmif_fuse::text::*;

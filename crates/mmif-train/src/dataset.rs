//! The `.mmifds` dataset (`mmif prepare` writes it, `mmif train` reads it): the format and its
//! reader and writer live in [`mmif_io::dataset`], outside burn, so that the `mmifds` fuzz target
//! can build them without the network crates.

pub use mmif_io::dataset::*;

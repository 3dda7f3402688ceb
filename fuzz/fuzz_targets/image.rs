#![no_main]
//! `cargo +nightly fuzz run image`: see `mmif_testkit::fuzz::image`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| mmif_testkit::fuzz::image(data));

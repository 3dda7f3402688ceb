#![no_main]
//! `cargo +nightly fuzz run checkpoint`: see `mmif_testkit::fuzz::checkpoint`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| mmif_testkit::fuzz::checkpoint(data));

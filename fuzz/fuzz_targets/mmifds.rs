#![no_main]
//! `cargo +nightly fuzz run mmifds`: see `mmif_testkit::fuzz::mmifds`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| mmif_testkit::fuzz::mmifds(data));

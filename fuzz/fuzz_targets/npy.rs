#![no_main]
//! `cargo +nightly fuzz run npy`: see `mmif_testkit::fuzz::npy`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| mmif_testkit::fuzz::npy(data));

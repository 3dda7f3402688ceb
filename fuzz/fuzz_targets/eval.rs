#![no_main]
//! `cargo +nightly fuzz run eval`: see `mmif_testkit::fuzz::eval`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| mmif_testkit::fuzz::eval(data));

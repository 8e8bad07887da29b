//! safetensors checkpoint loading (registry load and `driftd import`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = driftd::harness::checkpoint(data);
});

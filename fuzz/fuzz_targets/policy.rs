//! The policy parser (`driftd check-config`) on arbitrary text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = driftd::harness::policy_text(data);
});

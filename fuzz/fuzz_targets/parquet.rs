//! Arbitrary bytes as a `.parquet` file in the data directory, taken in
//! as the daemon takes a file. A panic inside polars is contained by the
//! ingestion code (it becomes a quarantine), so it is not a crash here:
//! this target's panic hook only notes it (printed once per location, and
//! the input saved under `$DRIFTD_FUZZ_PANIC_DIR` when set, to become a
//! regression file). A panic that escapes, an abort, a timeout or an
//! allocation past `-rss_limit_mb` is a crash.
#![no_main]

use std::collections::HashSet;
use std::sync::{Mutex, Once};

use libfuzzer_sys::fuzz_target;

/// Where the last panic happened, while an input runs.
static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);
static SEEN: Mutex<Option<HashSet<String>>> = Mutex::new(None);
static HOOK: Once = Once::new();

fn note_panics() {
    // Replaces libfuzzer-sys's hook (which aborts on every panic, caught or
    // not); an escaped panic still aborts in libfuzzer-sys's own wrapper.
    std::panic::set_hook(Box::new(|info| {
        let at = info.location().map_or_else(
            || "unknown".to_string(),
            |l| format!("{}:{}", l.file(), l.line()),
        );
        let first = SEEN
            .lock()
            .map(|mut s| s.get_or_insert_with(HashSet::new).insert(at.clone()))
            .unwrap_or(false);
        if first {
            eprintln!("driftd-fuzz: panic at {at}: {info}");
        }
        if let Ok(mut last) = LAST_PANIC.lock() {
            *last = Some(at);
        }
    }));
}

fuzz_target!(|data: &[u8]| {
    HOOK.call_once(note_panics);
    let outcome = driftd::harness::parquet_file(data);
    let panicked = LAST_PANIC.lock().ok().and_then(|mut p| p.take());
    if let Some(at) = panicked {
        // Contained: the file must have come back as a quarantine.
        assert!(outcome.is_err(), "a panic at {at} left the file ingested");
        if let Some(dir) = std::env::var_os("DRIFTD_FUZZ_PANIC_DIR") {
            let name = at.replace(['/', ':', '.'], "_");
            let _ = std::fs::create_dir_all(&dir);
            let path = std::path::Path::new(&dir).join(name);
            if !path.exists() {
                let _ = std::fs::write(path, data);
            }
        }
    }
});

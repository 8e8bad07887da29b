//! Bakes libtorch's library directory into the binary's run path, so
//! `target/*/driftd` runs with no `LD_LIBRARY_PATH`. torch-sys (our direct
//! dependency, `links = "tch"`) exports the directory it linked against.
//!
//! `$ORIGIN/../lib/driftd` comes first: `make install` copies the libtorch
//! libraries there, so an installed driftd does not depend on the build's
//! venv (which a hardened service could not read anyway: ProtectHome=).

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    println!("cargo:rustc-link-arg=-Wl,-rpath,$ORIGIN/../lib/driftd");
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    }
}

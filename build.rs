//! Bakes libtorch's library directory into the binary's run path, so
//! `target/*/driftd` runs with no `LD_LIBRARY_PATH`. torch-sys (our direct
//! dependency, `links = "tch"`) exports the directory it linked against.

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    }
}

//! Puts libtorch's library directory on the fuzz targets' run path, as
//! driftd's own build.rs does for its binaries (link arguments of a
//! dependency's build script do not reach this package's binaries).

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    }
}

//! Builds with `dynamic-backends` link llama.cpp as shared libraries; an
//! rpath of `$ORIGIN` lets the binary find them beside itself, where a
//! release archive or the Docker image puts them.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    if linux && std::env::var_os("CARGO_FEATURE_DYNAMIC_BACKENDS").is_some() {
        println!("cargo:rustc-link-arg-bins=-Wl,-rpath,$ORIGIN");
    }
}

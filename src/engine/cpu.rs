//! Which CPU kernels serve. With `dynamic-backends`, ggml's CPU kernels are
//! separate libraries, one per CPU generation (`libggml-cpu-haswell.so`,
//! `-zen4`, ...); ggml scores each against this CPU and loads the best it
//! can run. The features the loaded kernels were compiled for tell an
//! operator which one serves (`/v1/models`, `capabilities.backend`).

use std::ffi::CStr;
use std::path::Path;

/// Loads ggml's backends from `--backends-dir`, else from beside the
/// executable (a release archive or the Docker image), else from where the
/// build put them. Static builds link their one CPU backend: nothing to do.
#[cfg(feature = "dynamic-backends")]
pub fn load_backends(dir: Option<&Path>) -> Result<(), String> {
    let beside_exe = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
        .filter(|d| has_cpu_variants(d));
    let built = llama_cpp_sys_2::BACKENDS_DIR.map(std::path::PathBuf::from);
    let dir = dir
        .map(Path::to_path_buf)
        .or(beside_exe)
        .or(built)
        .ok_or("no directory of ggml backends (--backends-dir)")?;
    if !has_cpu_variants(&dir) {
        return Err(format!(
            "{} holds no libggml-cpu-*.so: point --backends-dir at the directory \
             that holds the CPU backends",
            dir.display()
        ));
    }
    llama_cpp_2::llama_backend::load_backends_from_path(&dir);
    let features = cpu_features();
    if features.is_empty() {
        return Err(format!(
            "no CPU backend in {} runs on this CPU",
            dir.display()
        ));
    }
    tracing::info!(dir = %dir.display(), features = %features.join(" "), "loaded ggml's CPU backend");
    Ok(())
}

#[cfg(feature = "dynamic-backends")]
fn has_cpu_variants(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("libggml-cpu"))
    })
}

#[cfg(not(feature = "dynamic-backends"))]
pub fn load_backends(_dir: Option<&Path>) -> Result<(), String> {
    Ok(())
}

/// The instruction-set features ggml's CPU backend was compiled for (a
/// static build: the build's; a dynamic one: the variant chosen for this
/// CPU), e.g. `AVX2 FMA F16C ... OPENMP`. Empty when no CPU backend is
/// registered.
pub fn cpu_features() -> Vec<String> {
    use llama_cpp_sys_2 as sys;
    let mut out = Vec::new();
    // SAFETY: the registry lookups take NUL-terminated names and return null
    // when absent, which is checked. `ggml_backend_get_features` is the CPU
    // registry's documented entry point of type
    // `ggml_backend_get_features_t`; a null address becomes `None`. It
    // returns a static array terminated by an entry whose name is null,
    // holding NUL-terminated strings that live as long as the library (which
    // stays loaded for the process).
    unsafe {
        let reg = sys::ggml_backend_reg_by_name(c"CPU".as_ptr());
        if reg.is_null() {
            return out;
        }
        let addr =
            sys::ggml_backend_reg_get_proc_address(reg, c"ggml_backend_get_features".as_ptr());
        let get: sys::ggml_backend_get_features_t = std::mem::transmute(addr);
        let Some(get) = get else {
            return out;
        };
        let mut f = get(reg);
        while !f.is_null() && !(*f).name.is_null() {
            let name = CStr::from_ptr((*f).name).to_string_lossy();
            let value = if (*f).value.is_null() {
                "1".into()
            } else {
                CStr::from_ptr((*f).value).to_string_lossy()
            };
            out.push(if value == "1" {
                name.into_owned()
            } else {
                format!("{name}={value}")
            });
            f = f.add(1);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_cpu_backend_reports_what_it_was_built_for() {
        let features = super::cpu_features();
        // Every build has OpenMP (the crate's `openmp` feature); x86-64
        // builds have at least SSE3.
        assert!(features.iter().any(|f| f == "OPENMP"), "{features:?}");
        #[cfg(target_arch = "x86_64")]
        assert!(features.iter().any(|f| f == "SSE3"), "{features:?}");
    }
}

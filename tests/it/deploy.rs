//! The deployment files (Dockerfiles, compose, nginx, Kubernetes) use only
//! flags and `TESSERA_*` variables that the CLI has: a renamed option must
//! not silently break a deployment.

use clap::CommandFactory;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn deployment_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = vec![root.join("Dockerfile")];
    let mut stack = vec![root.join("docker")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).expect("docker/ exists").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Words made of `[A-Za-z0-9_-]` that start with `prefix`.
fn words_with(text: &str, prefix: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .filter(|w| w.starts_with(prefix) && w.len() > prefix.len())
        .map(str::to_string)
        .collect()
}

#[test]
fn every_variable_and_flag_the_deployment_files_use_exists() {
    let cmd = tessera::config::Config::command();
    let envs: BTreeSet<String> = cmd
        .get_arguments()
        .filter_map(|a| a.get_env())
        .map(|e| e.to_string_lossy().into_owned())
        .collect();
    let flags: BTreeSet<String> = cmd
        .get_arguments()
        .filter_map(|a| a.get_long())
        .map(|l| format!("--{l}"))
        .collect();
    let mut checked = 0;
    for file in deployment_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        for var in words_with(&text, "TESSERA_") {
            assert!(
                envs.contains(&var),
                "{}: {var} is not a tessera variable",
                file.display()
            );
            checked += 1;
        }
        // Flags passed to tessera in manifests: `args: [...]` lists.
        if file.extension().is_some_and(|e| e == "yaml") {
            for line in text.lines().filter(|l| l.trim_start().starts_with("args:")) {
                for flag in words_with(line, "--") {
                    assert!(
                        flags.contains(&flag),
                        "{}: {flag} is not a tessera flag",
                        file.display()
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(
        checked >= 10,
        "the scan found only {checked} uses; is it reading the files?"
    );
}

#[test]
fn the_scan_catches_a_misspelt_variable() {
    let words = words_with("ENV TESSERA_HOST=0.0.0.0 TESSERA_PROT=1", "TESSERA_");
    assert!(words.contains("TESSERA_PROT"));
}

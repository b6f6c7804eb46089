use super::*;

fn touch(p: &Path) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, b"").unwrap();
}

#[test]
fn a_directory_gives_top_files_and_folders_with_their_mmproj() {
    let dir = std::env::temp_dir().join(format!("tessera-reg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    touch(&dir.join("coder-Q4_K_M.gguf"));
    touch(&dir.join("big-00002-of-00002.gguf"));
    touch(&dir.join("big-00001-of-00002.gguf"));
    touch(&dir.join("notes.txt"));
    touch(&dir.join("vlm/model-Q8_0.gguf"));
    touch(&dir.join("vlm/mmproj-model-f16.gguf"));
    touch(&dir.join("empty/readme.md"));
    let specs = scan_dir(&dir).unwrap();
    let ids: Vec<&str> = specs.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["big-00001-of-00002", "coder-Q4_K_M", "vlm"]);
    assert_eq!(
        specs[2].source,
        Source::File(dir.join("vlm/model-Q8_0.gguf"))
    );
    assert_eq!(specs[2].mmproj, Some(dir.join("vlm/mmproj-model-f16.gguf")));
    assert_eq!(specs[1].mmproj, None);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_config_file_gives_paths_from_its_folder_and_options_as_flags() {
    let text = r#"
[[models]]
id = "vision"
aliases = ["vlm", "default"]
model = "m/text.gguf"
mmproj = "/abs/mmproj.gguf"
[models.options]
ctx_size = 8192
tiling = "native"
no-mmproj-offload = true
metrics-public = false
cors-origin = ["a", "b"]

[[models]]
id = "coder"
hf_repo = "owner/name:Q8_0"
"#;
    let specs = parse_config(text, Path::new("/etc/tessera")).unwrap();
    assert_eq!(
        specs[0].source,
        Source::File("/etc/tessera/m/text.gguf".into())
    );
    assert_eq!(specs[0].mmproj, Some("/abs/mmproj.gguf".into()));
    assert_eq!(specs[0].aliases, ["vlm", "default"]);
    assert_eq!(
        specs[0].options,
        [
            "--cors-origin=a",
            "--cors-origin=b",
            "--ctx-size=8192",
            "--no-mmproj-offload",
            "--tiling=native"
        ]
    );
    assert_eq!(specs[1].source, Source::HfRepo("owner/name:Q8_0".into()));
}

#[test]
fn config_mistakes_are_refused_with_the_model_named() {
    let bad = |text: &str, says: &str| {
        let e = parse_config(text, Path::new(".")).unwrap_err();
        assert!(e.contains(says), "{e}");
    };
    bad("[[models]]\nid = \"a\"\n", "model `a` needs exactly one of");
    bad(
        "[[models]]\nid = \"a\"\nmodel = \"x\"\nhf_repo = \"o/n\"\n",
        "exactly one",
    );
    bad(
        "[[models]]\nid = \"a\"\nmodel = \"x\"\ncontext = 3\n",
        "unknown field",
    );
    bad("[[models]]\nid = \"a\"\nhf_repo = \"nope\"\n", "owner/name");
    bad(
        "[[models]]\nid = \"a\"\nmodel = \"x\"\n[models.options]\nport = 1\n",
        "set by the router",
    );
    bad(
        "[[models]]\nid = \"a\"\nmodel = \"x\"\n[models.options]\nx = {y = 1}\n",
        "`x` takes",
    );
}

#[test]
fn ids_and_aliases_are_unique() {
    let spec = |id: &str, aliases: &[&str]| ModelSpec {
        id: id.into(),
        aliases: aliases.iter().map(|a| a.to_string()).collect(),
        source: Source::File("x".into()),
        mmproj: None,
        options: Vec::new(),
    };
    assert!(check_names(&[spec("a", &["b"]), spec("c", &[])]).is_ok());
    let e = check_names(&[spec("a", &["b"]), spec("b", &[])]).unwrap_err();
    assert!(e.contains("`b`"), "{e}");
    assert!(check_names(&[spec("", &[])]).is_err());
}

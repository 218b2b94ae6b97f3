//! Declares the app's commands so that each window's capability file can
//! allow exactly the ones it uses (without this, every window may call every
//! command). The names come from `src/commands.rs`, where each command is
//! declared once.

#[path = "build/command_names.rs"]
mod command_names;

fn main() {
    println!("cargo:rerun-if-changed=src/commands.rs");
    let source = std::fs::read_to_string("src/commands.rs").expect("src/commands.rs");
    let names = command_names::command_names(&source);
    assert!(!names.is_empty(), "no commands found in src/commands.rs");
    let names: &'static [&'static str] = Vec::leak(
        names
            .into_iter()
            .map(|n| &*String::leak(n))
            .collect::<Vec<&'static str>>(),
    );
    tauri_build::try_build(
        tauri_build::Attributes::new()
            .app_manifest(tauri_build::AppManifest::new().commands(names)),
    )
    .expect("tauri build script");
}

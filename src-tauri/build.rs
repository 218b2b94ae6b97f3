//! Declares the app's commands so that each window's capability file can
//! allow exactly the ones it uses (without this, every window may call every
//! command). The names come from `src/commands.rs`, where each command is
//! declared once.

#[path = "build/command_names.rs"]
mod command_names;

fn main() {
    println!("cargo:rerun-if-changed=src/commands.rs");
    ui_built();
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

/// The app embeds the built UI (`ui/dist`): from a clean checkout, build it
/// first (`scripts/build-ui`, which needs Node.js), so a plain `cargo build`
/// works. A UI that is already built is left as it is; `scripts/build-ui`
/// (run by `scripts/test-desktop`, CI and `tauri build`) rebuilds it.
fn ui_built() {
    println!("cargo:rerun-if-changed=../ui/dist/index.html");
    if std::path::Path::new("../ui/dist/index.html").exists() {
        return;
    }
    let built = std::process::Command::new("bash")
        .arg("../scripts/build-ui")
        .status();
    if !built.is_ok_and(|s| s.success()) {
        panic!(
            "ui/dist is missing and scripts/build-ui failed: building the UI needs Node.js and npm (see docs/DESKTOP.md)"
        );
    }
}

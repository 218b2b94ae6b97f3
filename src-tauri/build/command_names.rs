/// The command names declared in `src/commands.rs` (each `fn name(` inside
/// `commands! { … }`). Shared by the build script and a test of the crate, so
/// the capability names and the commands cannot drift apart.
pub fn command_names(source: &str) -> Vec<String> {
    let Some(start) = source.find("\ncommands! {") else {
        return Vec::new();
    };
    source[start..]
        .lines()
        .filter_map(|line| line.strip_prefix("    fn "))
        .filter_map(|rest| rest.split('(').next())
        .map(str::to_string)
        .collect()
}

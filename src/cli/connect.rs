//! `gatehouse connect` and `disconnect`: the terminal side of
//! [`gatehouse::connect`] (finding where things are, printing the change).

use std::path::{Path, PathBuf};

use gatehouse::config::{self, Config};
use gatehouse::connect::{self as change, Dirs, Options};
use gatehouse::control::client::ControlClient;
use gatehouse::control::Request;
use gatehouse::text::inert;

pub struct Setup<'a> {
    pub data_dir: &'a Path,
    /// `--data-dir` was given: bridges must be told it too.
    pub explicit_dir: bool,
    pub config: Option<PathBuf>,
    pub project: Option<PathBuf>,
    pub json: bool,
}

impl Setup<'_> {
    pub fn new<'a>(
        data_dir: &'a Path,
        common: &super::Common,
        config: Option<PathBuf>,
        project: Option<PathBuf>,
    ) -> Setup<'a> {
        Setup {
            data_dir,
            explicit_dir: common.data_dir.is_some(),
            config,
            project,
            json: common.json,
        }
    }

    fn config_path(&self) -> PathBuf {
        self.config
            .clone()
            .unwrap_or_else(config::default_config_path)
    }

    /// The running Gatehouse's status, if one answers.
    fn running(&self) -> Option<serde_json::Value> {
        ControlClient::connect(self.data_dir)
            .and_then(|mut c| c.call(&Request::Status))
            .ok()
    }

    /// Whether the running Gatehouse serves this config file: then `connect`
    /// changes it through Gatehouse, its edit and reload one step that no
    /// edit from the app comes in between.
    fn serves(&self, config: &Path) -> bool {
        let served = self
            .running()
            .and_then(|s| s["config_path"].as_str().map(PathBuf::from));
        served.is_some_and(|served| change::same_file(&served, config))
    }

    /// Where the gateway is: the running Gatehouse's URL, else its config's port.
    fn gateway(&self) -> String {
        let running = self
            .running()
            .and_then(|s| s["url"].as_str().map(str::to_string));
        running.unwrap_or_else(|| {
            let port = Config::load(&self.config_path()).map_or(7390, |c| c.port);
            format!("http://127.0.0.1:{port}")
        })
    }

    fn options(&self, client: &str, move_secrets: bool) -> Result<Options, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut command = vec![exe.display().to_string()];
        if self.explicit_dir {
            command.extend([
                "--data-dir".to_string(),
                self.data_dir.display().to_string(),
            ]);
        }
        Options::new(
            client,
            self.project.clone(),
            self.config_path(),
            self.data_dir.to_path_buf(),
            self.gateway(),
            command,
            move_secrets,
        )
    }
}

pub fn list(setup: &Setup<'_>) -> Result<(), String> {
    let dirs = Dirs::from_env().ok_or("cannot find the home directory")?;
    let found = change::list(&dirs, &setup.gateway(), setup.project.as_deref());
    if setup.json {
        println!(
            "{}",
            gatehouse::text::inert_json(&serde_json::to_string_pretty(&found).unwrap_or_default())
        );
        return Ok(());
    }
    for f in &found {
        let state = match (&f.error, f.exists) {
            (Some(e), _) => format!("cannot read it: {}", inert(e)),
            (None, false) => "not found".into(),
            (None, true) if f.servers.is_empty() => "no MCP servers".into(),
            (None, true) => format!("{} server(s)", f.servers.len()),
        };
        println!("{:<15} {}  ({state})", f.client, f.file.display());
        for (name, how) in &f.servers {
            println!("    {}: {}", inert(name), inert(how));
        }
    }
    Ok(())
}

pub fn connect(
    setup: &Setup<'_>,
    client: &str,
    apply: bool,
    move_secrets: bool,
) -> Result<(), String> {
    let opts = setup.options(client, move_secrets)?;
    let plan = change::plan(&opts)?;
    for (name, why) in &plan.skipped {
        println!("left as it is: {} ({})", inert(name), inert(why));
    }
    for name in &plan.connected {
        println!("already through Gatehouse: {}", inert(name));
    }
    if plan.servers.is_empty() {
        println!("Nothing to connect in {}.", plan.file.display());
        return Ok(());
    }
    print!(
        "{}",
        inert_lines(&change::diff(&plan, &opts.gatehouse_config))
    );
    let secrets = plan.secrets();
    let names: Vec<String> = secrets.iter().map(|(s, n)| format!("{s}/{n}")).collect();
    if !secrets.is_empty() {
        if move_secrets {
            println!(
                "{} secret(s) found ({}) go to the keychain, not into the config.",
                secrets.len(),
                names.join(", ")
            );
        } else {
            println!(
                "Found {} plaintext secret(s) ({}): they are copied into {} as they are. Add --move-secrets to keep them in the keychain instead.",
                secrets.len(),
                names.join(", "),
                opts.gatehouse_config.display()
            );
        }
    }
    if !apply {
        println!("This was a dry run: nothing was changed. Add --apply to make the change.");
        return Ok(());
    }
    let through = ThroughGatehouse(setup.data_dir);
    let local = change::LocalFile(&opts.gatehouse_config);
    let config: &dyn change::ConfigFile = if setup.serves(&opts.gatehouse_config) {
        &through
    } else {
        &local
    };
    let connected = change::apply(&plan, &opts, &|| change::secret_store(&plan, &opts), config)?;
    if let Some(store) = &connected.moved_secrets {
        println!("Moved into the keychain ({store}): {}", names.join(", "));
    }
    println!("{connected}");
    Ok(())
}

/// Gatehouse's config file changed through the running Gatehouse that
/// serves it.
struct ThroughGatehouse<'a>(&'a Path);

impl change::ConfigFile for ThroughGatehouse<'_> {
    fn replace(&self, was: Option<&str>, text: Option<&str>) -> Result<(), String> {
        let text = text.ok_or("the config file Gatehouse serves stays")?;
        let request = Request::ReplaceConfig {
            was: was.map(config::fingerprint),
            text: text.to_string(),
        };
        ControlClient::connect(self.0)
            .and_then(|mut c| c.call(&request))
            .map(drop)
            .map_err(|e| e.message)
    }

    fn served(&self) -> bool {
        true
    }
}

pub fn disconnect(setup: &Setup<'_>, client: &str, force: bool) -> Result<(), String> {
    let opts = setup.options(client, false)?;
    println!("{}", change::disconnect(&opts, force)?);
    Ok(())
}

/// A diff of files that may hold outside text, each line inert.
fn inert_lines(text: &str) -> String {
    text.lines().map(|l| format!("{}\n", inert(l))).collect()
}

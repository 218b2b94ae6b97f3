//! Command-line options and their environment variables.

use std::path::PathBuf;

pub const USAGE: &str = "\
Usage: gatehouse-desktop [--data-dir DIR] [--port PORT] [--config FILE] [--hidden] [--no-tray]

  --data-dir DIR  where the database and sockets live (env GATEHOUSE_DATA_DIR;
                  default: the platform data directory, e.g. ~/.local/share/gatehouse)
  --port PORT     port on 127.0.0.1 (env GATEHOUSE_PORT; default 7390; 0 picks a free one)
  --config FILE   MCP servers to front (env GATEHOUSE_CONFIG; default: ~/.config/gatehouse/gatehouse.toml if it exists, else the built-in demo server)
  --hidden        start in the tray, without the main window
  --no-tray       no tray icon (env GATEHOUSE_NO_TRAY=1)

The running app answers the `gatehouse` CLI (same data directory).";

#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub data_dir: PathBuf,
    pub port: Option<u16>,
    pub config: Option<PathBuf>,
    pub hidden: bool,
    pub no_tray: bool,
}

impl Options {
    /// Reads `args` (without the program name), falling back to `env`.
    pub fn parse(args: &[String], env: impl Fn(&str) -> Option<String>) -> Result<Options, String> {
        let mut data_dir = env("GATEHOUSE_DATA_DIR").map(PathBuf::from);
        let mut port = match env("GATEHOUSE_PORT") {
            Some(p) => Some(parse_port(&p)?),
            None => None,
        };
        let mut config = env("GATEHOUSE_CONFIG").map(PathBuf::from);
        let mut hidden = false;
        let mut no_tray = env("GATEHOUSE_NO_TRAY").is_some_and(|v| v == "1");
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
                _ => (arg.as_str(), None),
            };
            let mut value = || {
                inline
                    .clone()
                    .or_else(|| it.next().cloned())
                    .ok_or_else(|| format!("{flag} needs a value\n\n{USAGE}"))
            };
            match flag {
                "--data-dir" => data_dir = Some(PathBuf::from(value()?)),
                "--port" => port = Some(parse_port(&value()?)?),
                "--config" => config = Some(PathBuf::from(value()?)),
                "--hidden" => hidden = true,
                "--no-tray" => no_tray = true,
                "-h" | "--help" => return Err(USAGE.to_string()),
                // Desktop launchers and WebDriver may add their own switches.
                other if other.starts_with("-psn_") => {}
                other => return Err(format!("unknown argument {other:?}\n\n{USAGE}")),
            }
        }
        Ok(Options {
            data_dir: data_dir.unwrap_or_else(gatehouse::config::default_data_dir),
            port,
            config,
            hidden,
            no_tray,
        })
    }
}

fn parse_port(text: &str) -> Result<u16, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("invalid port {text:?}: give a number from 0 to 65535"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn flags_override_the_environment() {
        let env = |k: &str| match k {
            "GATEHOUSE_DATA_DIR" => Some("/env/dir".to_string()),
            "GATEHOUSE_PORT" => Some("0".to_string()),
            _ => None,
        };
        let o = Options::parse(&args(&["--port=7400", "--hidden"]), env).unwrap();
        assert_eq!(o.data_dir, PathBuf::from("/env/dir"));
        assert_eq!(o.port, Some(7400));
        assert!(o.hidden);
        let o = Options::parse(&args(&["--data-dir", "/x"]), env).unwrap();
        assert_eq!((o.data_dir, o.port), (PathBuf::from("/x"), Some(0)));
    }

    #[test]
    fn bad_input_says_what_to_do() {
        let none = |_: &str| None;
        assert!(Options::parse(&args(&["--port", "http"]), none)
            .unwrap_err()
            .contains("0 to 65535"));
        assert!(Options::parse(&args(&["--bogus"]), none)
            .unwrap_err()
            .contains("Usage"));
        assert!(Options::parse(&args(&["--data-dir"]), none)
            .unwrap_err()
            .contains("needs a value"));
    }
}

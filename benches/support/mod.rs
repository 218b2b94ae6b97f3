//! What the benches share: the quick-mode switch and an empty Gatehouse
//! set-up (a config file and a data directory in a temp directory).
#![allow(dead_code)] // each bench uses its part

use std::path::PathBuf;

use anyhow::Result;

/// `GATEHOUSE_BENCH_QUICK=1`: a smoke run (CI), whose numbers mean little.
pub fn quick() -> bool {
    std::env::var("GATEHOUSE_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// A temp directory with a config file (no servers, any port) and the path
/// of a data directory in it; a two-worker runtime, like the machine's cores.
pub struct Setup {
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    pub data_dir: PathBuf,
    pub runtime: tokio::runtime::Runtime,
}

impl Setup {
    pub fn new() -> Result<Setup> {
        let dir = tempfile::tempdir()?;
        let (config_path, data_dir) = (dir.path().join("gatehouse.toml"), dir.path().join("data"));
        std::fs::write(&config_path, "# benchmark\nport = 0\n")?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        Ok(Setup {
            dir,
            config_path,
            data_dir,
            runtime,
        })
    }

    pub fn config(&self) -> Result<gatehouse::Config> {
        Ok(gatehouse::Config::load(&self.config_path)?)
    }
}

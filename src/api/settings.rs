//! The settings a person changes from the app's Settings and `gatehouse
//! settings`: written to the config file (comments kept, temp file and
//! rename, checked before it is written) and in force at once, except the
//! port, which takes effect at the next start (the answer says so).

use serde::{Deserialize, Serialize};

use super::{Actor, Error, Gatehouse, Result};
use crate::clock;
use crate::config::{AskDefault, DefaultDuration, Theme};

/// What the person can set, as it is now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct Settings {
    /// The port in the config file.
    pub port: u16,
    /// The port Gatehouse listens on now (differs until a restart, or when given on the command line).
    pub listening_port: u16,
    /// Set when the command line gave the port (`--port`): it wins over the file's.
    pub port_from_command_line: bool,
    #[ts(type = "number")]
    pub consent_timeout_secs: i64,
    pub default_duration: DefaultDuration,
    pub ask_every_time: AskDefault,
    pub bind_grants_to_program: bool,
    pub theme: Theme,
    /// Audit events older than this many days are archived and cut (0: kept).
    pub keep_audit_days: u32,
    /// Past this many audit events, the oldest are archived and cut (0: no limit).
    #[ts(type = "number")]
    pub keep_audit_events: u64,
    pub config_path: Option<String>,
}

/// A change of some settings (the others stay as they are).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ts_rs::TS)]
#[serde(default)]
pub struct SettingsChange {
    pub port: Option<u16>,
    #[ts(type = "number | null")]
    pub consent_timeout_secs: Option<i64>,
    pub default_duration: Option<DefaultDuration>,
    pub ask_every_time: Option<AskDefault>,
    pub bind_grants_to_program: Option<bool>,
    pub theme: Option<Theme>,
    /// 0: keep every event, whatever its age.
    pub keep_audit_days: Option<u32>,
    /// 0: no limit on the number of events.
    #[ts(type = "number | null")]
    pub keep_audit_events: Option<u64>,
}

/// The settings after a change, and whether a restart is needed for all of it.
#[derive(Debug, Clone, Serialize, Deserialize, ts_rs::TS)]
pub struct SettingsChanged {
    pub settings: Settings,
    /// Set when the port changed: Gatehouse listens on the new one after a restart.
    pub restart_needed: Option<String>,
}

/// Consent requests wait at least this long, and at most this long.
const CONSENT_TIMEOUT_SECS: std::ops::RangeInclusive<i64> = 10..=3600;

impl Gatehouse {
    pub fn settings(&self) -> Settings {
        let c = self.config();
        Settings {
            port: c.port,
            listening_port: self.auth().port,
            port_from_command_line: c.port_override.is_some(),
            consent_timeout_secs: c.consent_timeout_ms / clock::SECOND,
            default_duration: c.default_duration,
            ask_every_time: c.ask_every_time,
            bind_grants_to_program: c.bind_grants_to_program,
            theme: c.theme,
            keep_audit_days: c
                .keep_audit
                .for_ms
                .map_or(0, |ms| ((ms + clock::DAY - 1) / clock::DAY) as u32),
            keep_audit_events: c.keep_audit.events.unwrap_or(0),
            config_path: c.path.as_ref().map(|p| p.display().to_string()),
        }
    }

    /// Writes the changed settings to the config file and puts them in force.
    pub fn change_settings(&self, change: SettingsChange, actor: Actor) -> Result<SettingsChanged> {
        if change.port == Some(0) {
            return Err(Error::bad_request("the port must be between 1 and 65535"));
        }
        if let Some(secs) = change.consent_timeout_secs {
            if !CONSENT_TIMEOUT_SECS.contains(&secs) {
                return Err(Error::bad_request(
                    "the consent timeout must be between 10 seconds and an hour",
                ));
            }
        }
        if change.keep_audit_days.is_some_and(|d| d > 3650) {
            return Err(Error::bad_request(
                "keep the audit log at most 3650 days (0 keeps it all)",
            ));
        }
        self.edit_config(actor, |path| {
            let mut doc = crate::config::edit::read(path).map_err(Error::bad_request)?;
            // 0 takes a retention key out: everything is kept.
            match change.keep_audit_days {
                Some(0) => drop(doc.remove("keep_audit_for")),
                Some(days) => doc["keep_audit_for"] = toml_edit::value(format!("{days}d")),
                None => {}
            }
            match change.keep_audit_events {
                Some(0) => drop(doc.remove("keep_audit_events")),
                Some(n) => doc["keep_audit_events"] = toml_edit::value(n as i64),
                None => {}
            }
            let mut set = |key: &str, value: toml_edit::Value| {
                doc[key] = toml_edit::value(value);
            };
            if let Some(port) = change.port {
                set("port", i64::from(port).into());
            }
            if let Some(secs) = change.consent_timeout_secs {
                let text = if secs % 60 == 0 {
                    format!("{}m", secs / 60)
                } else {
                    format!("{secs}s")
                };
                set("consent_timeout", text.into());
            }
            if let Some(d) = change.default_duration {
                set("default_duration", d.as_str().into());
            }
            if let Some(a) = change.ask_every_time {
                let text = match a {
                    AskDefault::Destructive => "destructive",
                    AskDefault::None => "none",
                };
                set("ask_every_time", text.into());
            }
            if let Some(b) = change.bind_grants_to_program {
                set("bind_grants_to_program", b.into());
            }
            if let Some(t) = change.theme {
                let text = match t {
                    Theme::System => "system",
                    Theme::Light => "light",
                    Theme::Dark => "dark",
                };
                set("theme", text.into());
            }
            crate::config::edit::write(path, &doc).map_err(Error::bad_request)
        })?;
        let settings = self.settings();
        let restart_needed = match change.port {
            Some(_) if settings.port_from_command_line => Some(format!(
                "Gatehouse was started with --port {}, which wins over the file's port {}",
                settings.listening_port, settings.port
            )),
            Some(port) if port != settings.listening_port => Some(format!(
                "Gatehouse listens on port {} until it is restarted; then on {port}",
                settings.listening_port
            )),
            _ => None,
        };
        Ok(SettingsChanged {
            settings,
            restart_needed,
        })
    }
}

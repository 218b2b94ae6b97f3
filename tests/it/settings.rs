//! Settings changed while Gatehouse runs (`gatehouse settings`, the app's
//! Settings): written to the config file with its comments kept, in force at
//! once (a new consent timeout applies to the next request), the port at the
//! next start; a bad value changes nothing and says why.

use crate::support::serve::Serve;
use crate::support::*;

#[test]
fn settings_are_written_kept_and_in_force_at_once() {
    let config = format!("# my own comment\n{}", config_text(""));
    let gh = Serve::start(&config, &[]);
    let before = gh.cli_json(&["settings"]);
    assert_eq!(before["consent_timeout_secs"], 300);
    assert_eq!(before["default_duration"], "forever");
    assert_eq!(before["theme"], "system");

    let said = gh.cli_ok(&[
        "settings",
        "--consent-timeout",
        "2m",
        "--default-duration",
        "1d",
        "--ask-every-time",
        "none",
        "--theme",
        "dark",
        "--port",
        "7499",
    ]);
    assert!(said.contains("consent timeout         120 s"), "{said}");
    // The test starts Gatehouse with --port, which wins over the file's port.
    assert!(
        said.contains("which wins over the file's port 7499"),
        "{said}"
    );
    let text = std::fs::read_to_string(gh.config_path()).unwrap();
    assert!(text.starts_with("# my own comment\n"), "{text}");
    assert!(text.contains("consent_timeout = \"2m\""), "{text}");
    assert!(text.contains("default_duration = \"1d\""), "{text}");
    assert!(text.contains("theme = \"dark\""), "{text}");
    // In force now: the status (what consent requests use) says so; the port waits for a restart.
    let status = gh.cli_json(&["status"]);
    assert_eq!(status["consent_timeout_ms"], 120_000);
    let now = gh.cli_json(&["settings"]);
    assert_eq!(now["ask_every_time"], "none");
    assert_eq!(now["port"], 7499);
    assert_ne!(now["listening_port"], 7499);

    // A bad value: one clear message, nothing written.
    for (flag, value, says) in [
        ("--consent-timeout", "5s", "between 10 seconds and an hour"),
        ("--consent-timeout", "soon", "use a duration"),
        ("--port", "0", "between 1 and 65535"),
    ] {
        let out = gh.cli(&["settings", flag, value]);
        assert!(!out.status.success(), "{flag} {value}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{flag} {value}: {err}");
    }
    assert_eq!(std::fs::read_to_string(gh.config_path()).unwrap(), text);
}

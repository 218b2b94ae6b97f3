//! Exporting the timeline to a file the person can open.

use std::path::Path;

use gatehouse::api::{AuditFilter, Error, ExportFormat, Gatehouse};

/// Writes the events matching `filter` to a new file in `dir`; returns its path.
pub fn to_file(
    gh: &Gatehouse,
    filter: &AuditFilter,
    format: ExportFormat,
    dir: &Path,
) -> Result<String, Error> {
    let io = |e: std::io::Error| Error::internal(format!("cannot export: {e}"));
    std::fs::create_dir_all(dir).map_err(io)?;
    let name = format!(
        "gatehouse-audit-{}.{}",
        gatehouse::clock::now(),
        format.extension()
    );
    let path = dir.join(name);
    gh.export_audit(filter, format, &path)?;
    Ok(path.display().to_string())
}

//! The gateway API's bearer token: where it comes from, where a generated one is kept.
//!
//! In order: `OUTPOST_API_TOKEN`, then `outpost.api.token` in the config, then the token
//! file (`outpost.api.tokenFile`, by default `$XDG_STATE_HOME/outpost/api-token-<port>`
//! or `~/.local/state/outpost/api-token-<port>`). `outpost serve` writes a new random
//! token there at every start when neither of the first two is set; clients read it.

use std::fmt::Write as _;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use outpost_supervisor::control::OutpostSettings;

/// The environment variable that wins over every other source.
pub(crate) const TOKEN_VARIABLE: &str = "OUTPOST_API_TOKEN";

/// Where the token came from, for the log.
#[derive(Debug)]
pub(crate) enum Source {
    Environment,
    Config,
    /// Generated and written to this file.
    Generated(PathBuf),
}

/// The token file for these settings.
pub(crate) fn token_file(settings: &OutpostSettings) -> anyhow::Result<PathBuf> {
    match &settings.api_token_file {
        Some(path) => Ok(path.clone()),
        None => Ok(state_dir("outpost.api.tokenFile")?
            .join(format!("api-token-{}", settings.api_listen.port()))),
    }
}

/// The registry file for these settings (see `crate::registry_file`).
pub(crate) fn registry_file(settings: &OutpostSettings) -> anyhow::Result<PathBuf> {
    match &settings.api_registry_file {
        Some(path) => Ok(path.clone()),
        None => Ok(state_dir("outpost.api.registryFile")?
            .join(format!("registry-{}.json", settings.api_listen.port()))),
    }
}

/// `$XDG_STATE_HOME/outpost`, else `~/.local/state/outpost`.
fn state_dir(key: &str) -> anyhow::Result<PathBuf> {
    let state = match std::env::var_os("XDG_STATE_HOME").filter(|dir| !dir.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => std::env::home_dir()
            .filter(|home| !home.as_os_str().is_empty())
            .map(|home| home.join(".local/state"))
            .with_context(|| {
                format!("neither XDG_STATE_HOME nor HOME is set, so there is no default place for {key}; set it")
            })?,
    };
    Ok(state.join("outpost"))
}

/// The token `outpost serve` requires: from the environment or the config, else a new
/// random one written to the token file (readable by its owner only).
pub(crate) fn for_server(settings: &OutpostSettings) -> anyhow::Result<(String, Source)> {
    if let Some(token) = from_environment()? {
        return Ok((token, Source::Environment));
    }
    if let Some(token) = &settings.api_token {
        return Ok((token.clone(), Source::Config));
    }
    let path = token_file(settings)?;
    let token = generate()?;
    write_private(&path, &token)
        .with_context(|| format!("could not write the API token to {}", path.display()))?;
    Ok((token, Source::Generated(path)))
}

/// The token a client sends: from the environment or the config, else read from the
/// token file the server wrote.
pub(crate) fn for_client(settings: &OutpostSettings) -> anyhow::Result<String> {
    if let Some(token) = from_environment()? {
        return Ok(token);
    }
    if let Some(token) = &settings.api_token {
        return Ok(token.clone());
    }
    let path = token_file(settings)?;
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "no API token: {TOKEN_VARIABLE} is not set, the config has no outpost.api.token, and {} cannot be read (`outpost serve` writes it when it starts with this config)",
            path.display()
        )
    })?;
    let token = text.trim().to_owned();
    anyhow::ensure!(
        !token.is_empty(),
        "the API token file {} is empty",
        path.display()
    );
    Ok(token)
}

fn from_environment() -> anyhow::Result<Option<String>> {
    match std::env::var(TOKEN_VARIABLE) {
        Ok(token) if token.trim().is_empty() => Ok(None),
        Ok(token) => Ok(Some(token.trim().to_owned())),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => {
            anyhow::bail!("{TOKEN_VARIABLE} is not valid UTF-8")
        }
    }
}

/// 32 random bytes from the operating system, as hex.
fn generate() -> anyhow::Result<String> {
    let mut bytes = [0_u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| anyhow::anyhow!("the operating system gave no random bytes: {e}"))?;
    Ok(bytes
        .iter()
        .fold(String::with_capacity(64), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        }))
}

/// Writes `text` to `path` with mode 0600, replacing the file in one step; creates
/// the directory (mode 0700) if needed.
pub(crate) fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let temporary = dir.join(format!(
        ".{}.{}",
        path.file_name()
            .map_or_else(|| "token".into(), |n| n.to_string_lossy()),
        std::process::id()
    ));
    let _ = std::fs::remove_file(&temporary);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temporary)?;
    file.write_all(text.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()?;
    // The mode is the one asked for whatever the umask; say so once more.
    std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(0o600))?;
    std::fs::rename(&temporary, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_token_is_long_random_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/outpost/api-token-7777");
        let first = generate().unwrap();
        assert_eq!(first.len(), 64);
        assert_ne!(first, generate().unwrap());
        write_private(&path, &first).unwrap();
        write_private(&path, "second").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "second\n");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir_mode = std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(dir_mode & 0o777, 0o700);
    }
}

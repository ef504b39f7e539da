//! The gateway API's bearer token: where it comes from, where a generated one is kept.
//!
//! In order: `OUTPOST_API_TOKEN`, then `outpost.api.token` in the config, then the token
//! file (`outpost.api.tokenFile`, by default `$XDG_STATE_HOME/outpost/api-token-<port>`
//! or `~/.local/state/outpost/api-token-<port>`). `outpost serve` writes a new random
//! token there at every start when neither of the first two is set; clients read it.
//!
//! A token from the environment must be [`MIN_TOKEN_BYTES`] long or more, as
//! `outpost.api.token` must (both counted in bytes, surrounding whitespace trimmed).

use std::fmt::Write as _;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use outpost_supervisor::control::OutpostSettings;

/// The environment variable that wins over every other source.
pub(crate) const TOKEN_VARIABLE: &str = "OUTPOST_API_TOKEN";

/// The shortest token accepted from [`TOKEN_VARIABLE`], in bytes: the config's
/// minimum for `outpost.api.token`.
pub(crate) const MIN_TOKEN_BYTES: usize = 16;

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

/// Whether [`TOKEN_VARIABLE`] gives the token (set and not blank).
pub(crate) fn in_environment() -> bool {
    std::env::var_os(TOKEN_VARIABLE).is_some_and(|token| !token.to_string_lossy().trim().is_empty())
}

fn from_environment() -> anyhow::Result<Option<String>> {
    match std::env::var(TOKEN_VARIABLE) {
        Ok(token) => checked(&token),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => {
            anyhow::bail!("{TOKEN_VARIABLE} is not valid UTF-8")
        }
    }
}

/// The token a [`TOKEN_VARIABLE`] value gives: trimmed; blank means none; shorter than
/// [`MIN_TOKEN_BYTES`] is refused.
fn checked(value: &str) -> anyhow::Result<Option<String>> {
    let token = value.trim();
    if token.is_empty() {
        return Ok(None);
    }
    anyhow::ensure!(
        token.len() >= MIN_TOKEN_BYTES,
        "{TOKEN_VARIABLE} is {} bytes long; the gateway API's token must be {MIN_TOKEN_BYTES} bytes or more (as outpost.api.token must): use a long random one (`openssl rand -hex 32`), or unset it and `outpost serve` generates one",
        token.len()
    );
    Ok(Some(token.to_owned()))
}

/// 32 random bytes from the operating system, as hex.
fn generate() -> anyhow::Result<String> {
    random_hex(32)
}

/// `count` random bytes from the operating system, as hex.
pub(crate) fn random_hex(count: usize) -> anyhow::Result<String> {
    let mut bytes = vec![0_u8; count];
    getrandom::fill(&mut bytes)
        .map_err(|e| anyhow::anyhow!("the operating system gave no random bytes: {e}"))?;
    Ok(bytes
        .iter()
        .fold(String::with_capacity(2 * count), |mut hex, byte| {
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

    #[test]
    fn a_token_from_the_environment_is_long_enough_or_refused() {
        assert_eq!(checked("  ").unwrap(), None, "blank means unset");
        assert_eq!(
            checked(" 0123456789abcdef\n").unwrap().as_deref(),
            Some("0123456789abcdef")
        );
        let error = checked("abc").unwrap_err().to_string();
        assert!(error.contains(TOKEN_VARIABLE), "{error}");
        assert!(error.contains("16 bytes"), "{error}");
        // Bytes, not characters, as for outpost.api.token: 5 × 3 bytes is too short.
        assert!(checked("€€€€€").is_err());
        assert!(checked("€€€€€€").is_ok());
    }
}

//! Memory figures from `/proc/<pid>/status`.

/// A `kB` line (`VmRSS:`, `VmHWM:`) of a `/proc/<pid>/status` file, 0 if unreadable.
pub(crate) fn status_kib(path: &str, key: &str) -> u64 {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

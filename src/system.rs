//! Facts about the machine and the process: what the doctor compares and support bundles carry.

use serde::Serialize;
use sysinfo::{CpuRefreshKind, Disks, MemoryRefreshKind, RefreshKind, System};

/// Where the process's local time zone comes from, and its name when it can be told.
#[derive(Debug, Clone, Serialize)]
pub struct EffectiveZone {
    pub zone: Option<String>,
    pub source: String,
    pub problem: Option<String>,
}

/// The local zone as the C library decides it: `TZ` if set, else `/etc/localtime`.
pub fn effective_zone() -> EffectiveZone {
    if let Ok(tz) = std::env::var("TZ") {
        let name = tz.trim_start_matches(':');
        return match name.parse::<chrono_tz::Tz>() {
            Ok(zone) => EffectiveZone {
                zone: Some(zone.name().into()),
                source: "TZ environment variable".into(),
                problem: None,
            },
            Err(_) if name.is_empty() => {
                EffectiveZone { zone: Some("UTC".into()), source: "TZ (empty)".into(), problem: None }
            }
            Err(_) => EffectiveZone {
                // What the C library really does with a TZ it cannot read.
                zone: Some("UTC".into()),
                source: "TZ environment variable".into(),
                problem: Some(format!("TZ={tz} is not an IANA zone; the C library silently falls back to UTC")),
            },
        };
    }
    match std::fs::read_link("/etc/localtime") {
        Ok(target) => {
            let text = target.display().to_string();
            let zone = text.split("zoneinfo/").nth(1).map(str::to_string);
            EffectiveZone { zone, source: format!("/etc/localtime -> {text}"), problem: None }
        }
        Err(_) => match std::fs::read_to_string("/etc/timezone") {
            Ok(name) => EffectiveZone { zone: Some(name.trim().into()), source: "/etc/timezone".into(), problem: None },
            Err(_) => EffectiveZone {
                zone: Some("UTC".into()),
                source: "no TZ and no /etc/localtime: UTC".into(),
                problem: None,
            },
        },
    }
}

#[derive(Debug, Serialize)]
pub struct DiskInfo {
    pub mount_point: String,
    pub file_system: String,
    pub total_bytes: u64,
    pub available_bytes: u64,
}

#[derive(Debug, Serialize)]
pub struct SystemInfo {
    pub hostname: String,
    pub os: String,
    pub kernel: String,
    pub arch: String,
    pub cpu_model: String,
    pub cpu_count: usize,
    pub memory_total_bytes: u64,
    pub memory_available_bytes: u64,
    pub swap_total_bytes: u64,
    pub uptime_seconds: u64,
    pub load_average: [f64; 3],
    pub time_zone: EffectiveZone,
    pub utc_offset: String,
    pub disks: Vec<DiskInfo>,
}

/// What can be read about the machine; a fact the platform does not offer is left empty.
pub fn info() -> SystemInfo {
    let sys = System::new_with_specifics(
        RefreshKind::nothing().with_memory(MemoryRefreshKind::everything()).with_cpu(CpuRefreshKind::nothing()),
    )
    .ok();
    let load = System::load_average().map(|l| [l.one, l.five, l.fifteen]).unwrap_or_default();
    let disks = Disks::new_with_refreshed_list()
        .map(|disks| {
            disks
                .iter()
                .map(|d| DiskInfo {
                    mount_point: d.mount_point().display().to_string(),
                    file_system: d.file_system().to_string_lossy().into_owned(),
                    total_bytes: d.total_space(),
                    available_bytes: d.available_space(),
                })
                .collect()
        })
        .unwrap_or_default();
    SystemInfo {
        hostname: System::host_name().unwrap_or_default(),
        os: System::long_os_version().unwrap_or_else(|_| std::env::consts::OS.into()),
        kernel: System::kernel_version().unwrap_or_default(),
        arch: std::env::consts::ARCH.into(),
        cpu_model: sys
            .as_ref()
            .and_then(|s| s.cpus().first().map(|c| c.brand().trim().to_string()))
            .unwrap_or_default(),
        cpu_count: sys.as_ref().map(|s| s.cpus().len()).unwrap_or(0),
        memory_total_bytes: sys.as_ref().map(System::total_memory).unwrap_or(0),
        memory_available_bytes: sys.as_ref().map(System::available_memory).unwrap_or(0),
        swap_total_bytes: sys.as_ref().map(System::total_swap).unwrap_or(0),
        uptime_seconds: System::uptime().unwrap_or(0),
        load_average: load,
        time_zone: effective_zone(),
        utc_offset: chrono::Local::now().format("%:z").to_string(),
        disks,
    }
}

/// The allocator of every gatehouse process: mimalloc. A page view allocates a few hundred
/// small blocks and frees them on another thread than the one that allocated them (tokio moves
/// tasks between its workers); glibc's malloc spent a tenth of a page view's CPU on that
/// (`_int_malloc`, `_int_free`, `malloc_consolidate` in a profile of `serve`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc commits its arenas eagerly where the system overcommits (its default): a doctor
/// run then peaked at 53 MB instead of 29 here, and `serve` stayed at 87 MB after a login
/// burst went quiet. Committed as it is used, an arena gives freed memory back. The option
/// must be set before the first allocation makes the first arena, so it is set from the
/// process's constructors (`.init_array`), which run before `main` and before anything in it
/// allocates.
#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array")]
static TUNE_ALLOCATOR: extern "C" fn() = tune_allocator;

/// `mi_option_arena_eager_commit` in mimalloc.h's `mi_option_e` (v3, the one the -sys crate
/// builds, and v2 alike); the crate names only some of the options.
#[cfg(target_os = "linux")]
const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;

#[cfg(target_os = "linux")]
extern "C" fn tune_allocator() {
    // A default, so that an operator's MIMALLOC_ARENA_EAGER_COMMIT still decides.
    // SAFETY: writes mimalloc's static option table, which needs no initialised allocator.
    unsafe { libmimalloc_sys::mi_option_set_default(ARENA_EAGER_COMMIT, 0) };
}

/// Hands the free memory both allocators hold back to the system; called when a burst is over.
/// mimalloc (Rust's allocations) purges freed pages as a thread goes on allocating; asked, it
/// frees the calling thread's cached pages and purges its arenas process-wide (the hashing
/// threads ask for themselves when they drop their working memory; pages cached by a tokio
/// worker wait for that worker's next allocations). glibc's malloc (SQLite's page cache) keeps
/// what a thread frees in that thread's arena for good unless trimmed.
pub fn return_free_memory() {
    // SAFETY: mi_collect frees only memory mimalloc holds unused, and may be called on any thread.
    unsafe { libmimalloc_sys::mi_collect(true) };
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases memory malloc holds free, and is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Whether the account `uid` can create a file in `dir`, tried as that account: `setpriv`
/// runs a shell with its uid, gid and supplementary groups (as a login of it would have them),
/// which creates a file with a random name exclusively (`mktemp`) and removes it. `None` when
/// this process cannot take another account's identity (it is not root), the account is unknown
/// or `setpriv` is missing — then only the account's own report (its heartbeat) can tell.
pub async fn can_write_as(uid: u32, dir: &std::path::Path) -> Option<Result<(), String>> {
    use nix::unistd::{Uid, User, geteuid};
    if !geteuid().is_root() {
        return None;
    }
    let user = User::from_uid(Uid::from_raw(uid)).ok().flatten()?;
    let script = "f=$(mktemp \"$1/.gatehouse-doctor-XXXXXXXXXX\") && rm -f -- \"$f\"";
    let run = tokio::process::Command::new("setpriv")
        .arg(format!("--reuid={uid}"))
        .arg(format!("--regid={}", user.gid.as_raw()))
        .arg("--init-groups")
        .args(["/bin/sh", "-c", script, "sh"])
        .arg(dir)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(std::time::Duration::from_secs(5), run).await.ok()?.ok()?;
    if output.status.success() {
        return Some(Ok(()));
    }
    let said = String::from_utf8_lossy(&output.stderr);
    // `mktemp: failed to create file via template '…': Permission denied`: keep the cause.
    let cause = said.trim().rsplit(": ").next().unwrap_or("cannot write").to_string();
    Some(Err(cause))
}

#[cfg(test)]
mod tests {
    /// The constructor ran in this binary too (as in every binary that links gatehouse): the
    /// option reads 0, where mimalloc's default is 2 (seen failing with the constructor removed).
    #[cfg(target_os = "linux")]
    #[test]
    fn the_allocator_is_tuned_by_the_constructor() {
        if std::env::var_os("MIMALLOC_ARENA_EAGER_COMMIT").is_some() {
            return; // the operator's value wins, as it should
        }
        // SAFETY: reads one of mimalloc's options.
        let eager = unsafe { libmimalloc_sys::mi_option_get(super::ARENA_EAGER_COMMIT) };
        assert_eq!(eager, 0, "mi_option_arena_eager_commit");
    }
}

//! A server process's CPU time and memory, read from `/proc`.

use std::fs;

/// What `/proc/<pid>` says now.
#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    /// User plus system CPU time, seconds.
    pub cpu_secs: f64,
    /// Peak resident set (`VmHWM`), bytes.
    pub peak_rss: u64,
    /// Resident set now (`VmRSS`), bytes.
    pub rss: u64,
}

/// Reads `pid`'s usage; zeros if the process is gone (the figure then shows as 0, not a panic).
pub fn usage(pid: u32) -> Usage {
    let ticks = clock_ticks();
    let cpu_secs = fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            // Fields after the command name, which is in parentheses and may hold spaces.
            let rest = &stat[stat.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            // utime and stime are fields 14 and 15 of the line: 11 and 12 after the name.
            let utime: f64 = f.get(11)?.parse().ok()?;
            let stime: f64 = f.get(12)?.parse().ok()?;
            Some((utime + stime) / ticks)
        })
        .unwrap_or(0.0);
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = |field: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    Usage {
        cpu_secs,
        peak_rss: kib("VmHWM:"),
        rss: kib("VmRSS:"),
    }
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions; it reads a constant of the running system.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

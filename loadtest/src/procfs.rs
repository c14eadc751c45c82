//! What Linux says about another process: CPU time from `/proc/PID/stat` and memory from
//! `/proc/PID/status`, parsed from their text.
//!
//! The parsers are pure functions of the file's text so they can be tested on fixed strings;
//! the readers return `None` when the process is gone or the file is not as expected (a
//! measurement that cannot be taken is reported as missing, never guessed).
//!
//! This file is also compiled into the recovery benchmark (`benches/recovery.rs`, through
//! `#[path]`), which watches the `oms` binary it starts: one reader of `/proc`, two users.
//! So it uses `std` only.
#![allow(dead_code)] // each of its two users needs a different part

use std::path::Path;

/// Clock ticks per second when `getconf CLK_TCK` cannot be asked: Linux reports `/proc` times
/// in USER_HZ, which is 100 on every mainstream architecture.
pub(crate) const CLOCK_TICKS_PER_SEC_DEFAULT: u64 = 100;

/// User plus system CPU time of a process, in clock ticks, from the text of `/proc/PID/stat`.
///
/// The second field (the command name) is in parentheses and may itself contain spaces and
/// parentheses, so fields are counted from the *last* `)`: after it come field 3 (state)
/// onwards, and `utime` and `stime` are fields 14 and 15 (proc(5)).
pub(crate) fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_comm.split_whitespace().skip(14 - 3);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    utime.checked_add(stime)
}

/// A `kB` field of `/proc/PID/status` (such as `VmRSS` or `VmHWM`), in KiB.
pub(crate) fn parse_status_kib(status: &str, field: &str) -> Option<u64> {
    let line = status
        .lines()
        .find(|l| l.strip_prefix(field).is_some_and(|rest| rest.starts_with(':')))?;
    let mut parts = line[field.len() + 1..].split_whitespace();
    let value = parts.next()?.parse().ok()?;
    (parts.next() == Some("kB")).then_some(value)
}

/// The process's user + system CPU time, in clock ticks.
pub(crate) fn read_cpu_ticks(pid: u32) -> Option<u64> {
    parse_stat_cpu_ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// One `kB` field of the process's `/proc/PID/status`, in KiB.
pub(crate) fn read_status_kib(pid: u32, field: &str) -> Option<u64> {
    parse_status_kib(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?, field)
}

/// A field of `/proc/meminfo` (such as `MemAvailable`), in KiB.
pub(crate) fn read_meminfo_kib(field: &str) -> Option<u64> {
    parse_status_kib(&std::fs::read_to_string(Path::new("/proc/meminfo")).ok()?, field)
}

/// The kernel's clock ticks per second (USER_HZ) as `getconf CLK_TCK` reports it, or
/// [`CLOCK_TICKS_PER_SEC_DEFAULT`] when it cannot be run. (`sysconf` itself would need FFI,
/// which this workspace forbids.)
pub(crate) fn clock_ticks_per_sec() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<u64>().ok())
        .filter(|&t| t > 0)
        .unwrap_or(CLOCK_TICKS_PER_SEC_DEFAULT)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real line from this machine (`cat /proc/self/stat`), utime 7 and stime 3 put in.
    const STAT: &str = "29598 (cat) R 29593 29593 20801 0 -1 4194304 101 0 0 0 7 3 0 0 20 0 1 0 66303 \
                        3133440 409 18446744073709551615 94270569279488 94270569299369";

    #[test]
    fn cpu_ticks_are_utime_plus_stime() {
        assert_eq!(parse_stat_cpu_ticks(STAT), Some(10));
    }

    #[test]
    fn a_command_name_with_spaces_and_parentheses_does_not_shift_the_fields() {
        let tricky = STAT.replace("(cat)", "(we) ird 1 2 (name)");
        assert_eq!(parse_stat_cpu_ticks(&tricky), Some(10));
    }

    #[test]
    fn truncated_or_garbled_stat_is_none() {
        assert_eq!(parse_stat_cpu_ticks("29598 (cat) R 1 2 3"), None);
        assert_eq!(parse_stat_cpu_ticks("no parenthesis at all"), None);
        assert_eq!(parse_stat_cpu_ticks(&STAT.replace(" 7 3 ", " x 3 ")), None);
    }

    #[test]
    fn status_fields_in_kib() {
        let status = "Name:\toms\nVmPeak:\t  200000 kB\nVmHWM:\t   54321 kB\nVmRSS:\t   12345 kB\nThreads:\t4\n";
        assert_eq!(parse_status_kib(status, "VmRSS"), Some(12_345));
        assert_eq!(parse_status_kib(status, "VmHWM"), Some(54_321));
        assert_eq!(parse_status_kib(status, "VmSwap"), None);
        // `Threads` has no unit: not a memory field.
        assert_eq!(parse_status_kib(status, "Threads"), None);
        assert_eq!(parse_status_kib("VmRSS:\tlots kB\n", "VmRSS"), None);
        // A field whose name merely starts with the one asked for is another field.
        assert_eq!(parse_status_kib("VmRSSx:\t5 kB\n", "VmRSS"), None);
    }

    #[test]
    fn reads_this_process() {
        let pid = std::process::id();
        assert!(read_cpu_ticks(pid).is_some());
        assert!(read_status_kib(pid, "VmHWM").is_some_and(|k| k > 0));
        assert!(clock_ticks_per_sec() > 0);
        assert!(read_meminfo_kib("MemAvailable").is_some());
    }
}

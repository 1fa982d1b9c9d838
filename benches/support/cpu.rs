//! CPU time a process has used, from `/proc`: the whole process (threads that have exited
//! included) and its live threads grouped by name, so a benchmark can say how much of the
//! machine a server took per unit of work and on which threads.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

/// CPU time (user and system) used by one process up to the moment it was read.
#[derive(Clone, Default)]
pub struct CpuTime {
    pub total: Duration,
    /// Live threads' time by kind: the thread's name without its numbering or `:suffix`.
    pub by_kind: BTreeMap<String, Duration>,
}

impl CpuTime {
    /// Reads process `pid`'s time; `None` when `/proc` has no such process.
    pub fn read(pid: u32) -> Option<CpuTime> {
        let total = ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)?.1;
        let mut by_kind = BTreeMap::new();
        for entry in std::fs::read_dir(format!("/proc/{pid}/task")).ok()?.flatten() {
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue; // the thread ended while the folder was read
            };
            if let Some((name, time)) = ticks(&stat) {
                *by_kind.entry(kind(&name)).or_default() += time;
            }
        }
        Some(CpuTime { total, by_kind })
    }

    /// The time used between `earlier` and `self`. A kind whose threads ended in between
    /// counts as zero (the whole process's total still has their time).
    pub fn since(&self, earlier: &CpuTime) -> CpuTime {
        let by_kind = self
            .by_kind
            .iter()
            .map(|(kind, &now)| {
                let before = earlier.by_kind.get(kind).copied().unwrap_or_default();
                (kind.clone(), now.saturating_sub(before))
            })
            .collect();
        CpuTime {
            total: self.total.saturating_sub(earlier.total),
            by_kind,
        }
    }

    /// "1.42 cores: tokio-runtime-w 0.80, eddy-isolate 0.41, …" over `window`, the kinds
    /// largest first, those under 1% of a core left out.
    pub fn describe(&self, window: Duration) -> String {
        let cores = |d: Duration| d.as_secs_f64() / window.as_secs_f64();
        let mut kinds: Vec<(&String, &Duration)> = self.by_kind.iter().collect();
        kinds.sort_by(|a, b| b.1.cmp(a.1));
        let parts: Vec<String> = kinds
            .into_iter()
            .filter(|(_, d)| cores(**d) >= 0.01)
            .map(|(kind, &d)| format!("{kind} {:.2}", cores(d)))
            .collect();
        format!("{:.2} cores ({})", cores(self.total), parts.join(", "))
    }
}

/// The thread's name and its user + system time, from one `stat` line of `/proc`.
fn ticks(stat: &str) -> Option<(String, Duration)> {
    // The name sits in parentheses and may itself hold spaces or parentheses.
    let (open, close) = (stat.find('(')?, stat.rfind(')')?);
    let name = stat.get(open + 1..close)?.to_owned();
    // After the name: state is field 3 of proc(5), utime field 14, stime field 15.
    let fields: Vec<&str> = stat.get(close + 1..)?.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let per_second = clock_ticks_per_second();
    Some((
        name,
        Duration::from_secs_f64((utime + stime) as f64 / per_second as f64),
    ))
}

/// `eddy-isolate:bench.c` → `eddy-isolate`, `sled-io-3` → `sled-io`, `tokio-runtime-w` stays.
fn kind(name: &str) -> String {
    let name = name.split(':').next().unwrap_or(name);
    name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '-' || c == '#')
        .to_owned()
}

/// The unit of `/proc`'s times (`getconf CLK_TCK`; 100 on Linux when it cannot be asked).
fn clock_ticks_per_second() -> u64 {
    static TICKS: OnceLock<u64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|text| text.trim().parse().ok())
            .filter(|&n| n > 0)
            .unwrap_or(100)
    })
}

//! The machine a benchmark runs on, printed by the benchmark itself: every published figure
//! depends on cores, CPU, memory, kernel and the data folder's file system, and on what else
//! the machine was doing, so the load average is printed at the start and at the end.

use std::path::Path;

/// Prints the header of benchmark `name`: the machine's facts, the file system of `data`
/// (where the benchmark keeps its data folders) and the load average now.
pub fn print_start(name: &str, data: &Path) {
    println!("eddy {name} benchmark");
    println!(
        "machine: {} cores ({}), {} memory, Linux {}",
        super::cores(),
        cpu_model(),
        memory(),
        kernel()
    );
    println!("data folders in {} ({})", data.display(), file_system(data));
    println!("load average at the start: {}", load_average());
}

/// Prints the load average at the end of the benchmark.
pub fn print_end() {
    println!("load average at the end: {}", load_average());
}

/// The 1, 5 and 15 minute load averages, as `/proc/loadavg` has them ("?" elsewhere).
pub fn load_average() -> String {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_else(|_| "?".into());
    load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

/// The first CPU's model name from `/proc/cpuinfo`.
fn cpu_model() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map_or("CPU model unknown".into(), |m| {
            m.trim_start_matches([' ', '\t', ':']).to_owned()
        })
}

/// Total memory from `/proc/meminfo`, in GiB.
fn memory() -> String {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kib = meminfo.lines().find_map(|l| {
        let rest = l.strip_prefix("MemTotal:")?;
        rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok()
    });
    match kib {
        Some(kib) => format!("{:.1} GiB", kib as f64 / (1024.0 * 1024.0)),
        None => "unknown".into(),
    }
}

fn kernel() -> String {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    match release.trim() {
        "" => "?".into(),
        release => release.to_owned(),
    }
}

/// The type of the file system holding `path`: the mount in `/proc/mounts` whose mount point
/// is the longest prefix of it.
pub fn file_system(path: &Path) -> String {
    let Ok(path) = path.canonicalize() else {
        return format!("{} not found", path.display());
    };
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let found = mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (device, point, kind) = (fields.next()?, fields.next()?, fields.next()?);
            // /proc/mounts writes a space in a mount point as \040.
            let point = point.replace("\\040", " ");
            path.starts_with(&point)
                .then(|| (point, kind.to_owned(), device.to_owned()))
        })
        .max_by_key(|(point, ..)| point.len());
    match found {
        Some((point, kind, device)) => format!("{kind} on {point}, from {device}"),
        None => "file system unknown".into(),
    }
}

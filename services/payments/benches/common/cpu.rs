//! CPU time from Linux's `/proc`, in clock ticks (1/100 s), for the benches.

/// Busy and total ticks of all CPUs, from the first line of `/proc/stat`
/// (busy: all but idle and I/O wait).
pub fn machine_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap();
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap())
        .collect();
    let total: u64 = fields.iter().sum();
    // user nice system idle iowait irq softirq steal …
    (total - fields[3] - fields[4], total)
}

/// The command name and CPU ticks (user and system) of a `/proc/<pid>/stat` line.
fn process_ticks(stat: &str) -> (&str, u64) {
    let name = &stat[stat.find('(').unwrap() + 1..stat.rfind(')').unwrap()];
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line.
    let ticks = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    (name, ticks)
}

/// CPU ticks of this process so far, all its threads.
pub fn own_ticks() -> u64 {
    process_ticks(&std::fs::read_to_string("/proc/self/stat").unwrap()).1
}

/// CPU ticks of every process named `name` (every `postgres` one, say) so far.
#[allow(dead_code)] // not every bench asks
pub fn ticks_of(name: &str) -> u64 {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .map(|stat| match process_ticks(&stat) {
            (n, ticks) if n == name => ticks,
            _ => 0,
        })
        .sum()
}

/// Ticks as seconds.
#[allow(dead_code)] // not every bench asks
pub fn seconds(ticks: u64) -> f64 {
    ticks as f64 / 100.0
}

//! [`MachineInfo`]: the machine a benchmark ran on, recorded in every
//! report (docs/BENCHMARKS.md gives every figure with its machine).

use serde::{Deserialize, Serialize};

/// Written where a field could not be read.
pub const UNKNOWN: &str = "unknown";

/// The machine a report was measured on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineInfo {
    /// `/proc/cpuinfo`'s first "model name", or [`UNKNOWN`].
    pub cpu_model: String,
    /// Logical CPUs the OS lists (`processor` entries of `/proc/cpuinfo`,
    /// else what the process may use).
    pub logical_cores: usize,
    /// Logical CPUs this process may run on (its affinity mask and cgroup
    /// quota), as `std::thread::available_parallelism` gives it.
    pub available_cores: usize,
    /// `/proc/sys/kernel/osrelease`, or [`UNKNOWN`].
    pub kernel_release: String,
}

impl MachineInfo {
    /// Reads the running machine's description; fields that cannot be
    /// read are [`UNKNOWN`] (or, for core counts, what the process can use).
    pub fn detect() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let available_cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let kernel_release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty());
        Self {
            cpu_model: cpu_model(&cpuinfo).unwrap_or_else(|| UNKNOWN.into()),
            logical_cores: processor_count(&cpuinfo).unwrap_or(available_cores),
            available_cores,
            kernel_release: kernel_release.unwrap_or_else(|| UNKNOWN.into()),
        }
    }

    /// One line for a report: CPU, cores and kernel.
    pub fn summary(&self) -> String {
        format!(
            "{}, {} logical cores ({} available to the process), Linux {}",
            self.cpu_model, self.logical_cores, self.available_cores, self.kernel_release
        )
    }
}

/// The first `model name` value of a `/proc/cpuinfo` text.
pub fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim() == "model name").then(|| value.trim().to_string())
    })
}

/// How many `processor` entries a `/proc/cpuinfo` text lists, if any.
pub fn processor_count(cpuinfo: &str) -> Option<usize> {
    let n = cpuinfo
        .lines()
        .filter(|line| {
            line.split_once(':')
                .is_some_and(|(k, _)| k.trim() == "processor")
        })
        .count();
    (n > 0).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::{cpu_model, processor_count};

    const CPUINFO: &str = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Processor\nflags\t\t: fpu\n\nprocessor\t: 1\nmodel name\t: Intel(R) Xeon(R) Processor\n";

    #[test]
    fn parses_cpuinfo() {
        assert_eq!(
            cpu_model(CPUINFO).as_deref(),
            Some("Intel(R) Xeon(R) Processor")
        );
        assert_eq!(processor_count(CPUINFO), Some(2));
        assert_eq!(cpu_model("processor : 0\n"), None);
        assert_eq!(processor_count(""), None);
    }
}

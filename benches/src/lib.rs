//! Benchmark helpers shared by the criterion benches in `benches/benches/`.

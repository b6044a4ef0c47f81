//! The limits through the real `ibiki-server` binary: half-open requests by
//! the ten thousand against a process whose open-file limit would not hold
//! them, bodies trickled a byte a second, and one client opening live
//! streams by the hundred.
//!
//! The tests take the machine in turn ([`support::one_at_a_time`]): each is
//! about timing, and the first needs most of the process's descriptors.
#![cfg(unix)]

// It counts the server's descriptors in /proc.
#[cfg(target_os = "linux")]
mod half_open;
#[path = "../support/server_process.rs"]
mod server_process;
mod streams;
mod support;
mod trickle;

//! Keeping a shim's resident set to what it runs, not what it ran once.
//!
//! One shim runs per task. Starting one touches code it never runs again
//! (reading its config, setting up isolation, fetching, spawning), and the
//! kernel maps code 64 KiB around each page fault ("fault-around"), so a
//! shim ends its start with several MiB of code mapped that its steady
//! state (waiting, probing health) does not use. Once the task runs, the
//! shim unmaps its read-only, executable file mappings (`MADV_DONTNEED`):
//! code is never written, so nothing is lost; what the shim runs from then
//! on faults back in from the page cache, shared with every other shim.
//! Writable and read-only data mappings are left alone: relocated data,
//! the GOT among them, lives there.

#![allow(unsafe_code)]

use std::ffi::c_void;
use std::ptr::NonNull;

use nix::sys::mman::{madvise, MmapAdvise};

/// Unmaps the process' executable file mappings (they fault back in as
/// run); returns how many. A failure leaves the shim as it was, larger.
pub fn release_code() -> usize {
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return 0;
    };
    let mut released = 0;
    for (start, len) in maps.lines().filter_map(executable_file_mapping) {
        let Some(addr) = NonNull::new(start as *mut c_void) else {
            continue;
        };
        // SAFETY: the range is a whole read-only, executable mapping of a
        // file, as the kernel lists it: its pages are never written, so
        // dropping them only makes the next access read them again from
        // the file (the page cache).
        if unsafe { madvise(addr, len, MmapAdvise::MADV_DONTNEED) }.is_ok() {
            released += 1;
        }
    }
    released
}

/// `(start, length)` of a `/proc/self/maps` line that maps a file
/// read-only and executable (`r-xp`).
fn executable_file_mapping(line: &str) -> Option<(usize, usize)> {
    let mut fields = line.split_whitespace();
    let range = fields.next()?;
    let perms = fields.next()?;
    let path = fields.nth(3)?;
    if !path.starts_with('/') || perms != "r-xp" {
        return None;
    }
    let (start, end) = range.split_once('-')?;
    let start = usize::from_str_radix(start, 16).ok()?;
    let end = usize::from_str_radix(end, 16).ok()?;
    Some((start, end.checked_sub(start)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_executable_file_mappings_are_released() {
        let table = [
            (
                "5590c0000000-5590c2000000 r-xp 00000000 08:01 123 /usr/bin/agora-executor",
                Some((0x5590c0000000, 0x2000000)),
            ),
            ("7f00-8f00 r--p 00000000 08:01 9 /usr/lib/libc.so.6", None),
            ("7f00-8f00 rw-p 00000000 08:01 9 /usr/lib/libc.so.6", None),
            ("7f00-8f00 rwxp 00000000 08:01 9 /tmp/jit", None),
            ("7f00-8f00 r-xp 00000000 00:00 0 [vdso]", None),
            ("7f00-8f00 rw-p 00000000 00:00 0 [heap]", None),
            ("7f00-8f00 rw-p 00000000 00:00 0", None),
        ];
        for (line, want) in table {
            assert_eq!(executable_file_mapping(line), want, "{line}");
        }
        // This test's own process keeps running on code released under it.
        assert!(release_code() > 0);
        assert_eq!(executable_file_mapping("x r-xp 0 0 0 /a"), None);
    }
}

//! Disk action tests (added with the disk action).

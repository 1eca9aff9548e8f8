//! Load: one `dockwire serve` process under many calls at once.
#![allow(clippy::unwrap_used)]

mod common;

use common::gauge;
use common::*;

/// The soft limit of open files the servers start with.
const SOFT_OPEN_FILES: u64 = 1024;

// ------------------------------------------------------------ limits

#[test]
fn serve_raises_its_soft_limit_of_open_files_to_the_hard_limit() {
    let scratch = Scratch::new("load-nofile");
    let server =
        Server::start_with_open_files(&scratch.join("server"), "127.0.0.1:0", &[], SOFT_OPEN_FILES);
    let (soft, hard) = gauge::open_file_limits(server.pid());
    assert!(
        hard.is_none_or(|h| h > SOFT_OPEN_FILES),
        "the hard limit here ({hard:?}) is not above {SOFT_OPEN_FILES}: nothing to show"
    );
    match hard {
        Some(hard) => assert_eq!(soft, Some(hard), "soft {soft:?}, hard {hard}"),
        // Unlimited (not on Linux, whose hard limit is at most nr_open):
        // left alone.
        None => assert_eq!(soft, Some(SOFT_OPEN_FILES)),
    }
}

//! The flood-and-disconnect soak, 100 requests (`tessera bench --soak` runs
//! 1,000): mixed valid, invalid and abandoned requests at a concurrency far
//! above `--parallel`, and nothing lost.

use crate::common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_request_soak_loses_nothing() {
    let s = start_mlp(&["--parallel", "2", "--max-queue", "8"]).await;
    // The engine says when it is idle (a watch channel): no polling.
    let idle = s.server.engine.wait_active(0);
    let report = tessera::soak::soak_until(&s.base, 100, 24, 11, idle).await;
    eprintln!("{}", serde_json::to_string_pretty(&report).unwrap());
    assert!(report.unexpected.is_empty(), "{:?}", report.unexpected);
    assert_eq!(report.end_active_sequences, 0);
    assert_eq!(report.end_queue_depth, 0);
    assert!(report.final_request_ok);
    assert_eq!(
        report.completed + report.cancelled + report.rejected_invalid + report.rejected_busy,
        100
    );
    assert!(report.completed > 0 && report.cancelled > 0 && report.rejected_invalid > 0);
}

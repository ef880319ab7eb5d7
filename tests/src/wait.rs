//! Waiting in tests for something another task or process does: a liveness bound, never a
//! timing target.

use std::time::Duration;

/// Polls `f` every 50 ms until it holds or `limit` has passed; whether it held.
pub async fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    f()
}

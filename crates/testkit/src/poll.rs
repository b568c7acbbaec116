//! Waiting for a condition with a deadline, never a fixed sleep.

use std::future::Future;
use std::time::Duration;

/// How often [`eventually_within`] asks again.
const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// Poll `f` until it yields `Some`, and return that; panic naming `what`
/// once `limit` has passed without it.
pub async fn eventually_within<T, F, Fut>(limit: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let end = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < end,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn returns_the_first_some() {
        let mut n = 0;
        let got = eventually_within(Duration::from_secs(5), "n to reach 3", || {
            n += 1;
            let v = (n >= 3).then_some(n);
            async move { v }
        })
        .await;
        assert_eq!(got, 3);
    }

    #[tokio::test]
    #[should_panic(expected = "timed out waiting for nothing")]
    async fn panics_naming_the_condition_after_the_limit() {
        eventually_within(Duration::from_millis(60), "nothing", || async {
            None::<()>
        })
        .await;
    }
}

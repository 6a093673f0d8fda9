//! A load generator for `okrsync run`: `clients` concurrent clients (tokio tasks, each its
//! own keep-alive connection), each looping over a weighted mix of GET requests until a
//! deadline, recording every request's latency and whether it succeeded. Bounded: a
//! per-request timeout, a fixed duration, loopback only.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};

/// One endpoint of the mix: its path, how often it comes (relative weight), and a label
/// for the tables.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub label: String,
    pub path: String,
    pub weight: usize,
}

/// What one run of the generator saw.
pub struct LoadResult {
    pub clients: usize,
    pub elapsed: Duration,
    /// Per endpoint (in the order given): latencies of the successful requests, and the
    /// number of failures (transport errors, timeouts, non-2xx answers).
    pub per_endpoint: Vec<(Vec<Duration>, usize)>,
    /// The first few failures, in words.
    pub failures: Vec<String>,
}

impl LoadResult {
    pub fn requests(&self) -> usize {
        self.per_endpoint.iter().map(|(t, e)| t.len() + e).sum()
    }

    pub fn errors(&self) -> usize {
        self.per_endpoint.iter().map(|(_, e)| e).sum()
    }

    pub fn all(&self) -> Vec<Duration> {
        self.per_endpoint
            .iter()
            .flat_map(|(t, _)| t.iter().copied())
            .collect()
    }

    pub fn rate(&self) -> f64 {
        self.requests() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Runs `clients` clients against `base` for `duration`; a request taking longer than
/// `timeout` counts as a failure. Each client opens its connection with one untimed
/// `GET /healthz` first, so connection setup is not in the figures.
pub async fn run(
    base: &str,
    endpoints: &[Endpoint],
    clients: usize,
    duration: Duration,
    timeout: Duration,
) -> Result<LoadResult> {
    // The weighted mix as a sequence; client `c` starts at a different place in it, so
    // at any moment the clients ask for different things.
    let schedule: Vec<usize> = endpoints
        .iter()
        .enumerate()
        .flat_map(|(i, e)| std::iter::repeat_n(i, e.weight))
        .collect();
    anyhow::ensure!(!schedule.is_empty(), "an empty request mix");
    let urls: Vec<String> = endpoints
        .iter()
        .map(|e| format!("{base}{}", e.path))
        .collect();
    let mut connected = Vec::with_capacity(clients);
    for _ in 0..clients {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .timeout(timeout)
            .build()
            .context("building a load client")?;
        connected.push(http);
    }
    // Open every connection before the clock starts.
    let warm = connected.iter().map(|http| {
        let url = format!("{base}/healthz");
        async move { http.get(url).send().await?.bytes().await }
    });
    for r in futures::future::join_all(warm).await {
        r.context("opening a load client's connection")?;
    }
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for (c, http) in connected.into_iter().enumerate() {
        let urls = urls.clone();
        let schedule = schedule.clone();
        tasks.spawn(async move {
            let mut took: Vec<Vec<Duration>> = vec![Vec::new(); urls.len()];
            let mut failed = vec![0usize; urls.len()];
            let mut failures = Vec::new();
            let mut at = (c * 7) % schedule.len();
            while Instant::now() < deadline {
                let which = schedule[at];
                at = (at + 1) % schedule.len();
                let t0 = Instant::now();
                let outcome = async {
                    let resp = http.get(&urls[which]).send().await?;
                    let status = resp.status();
                    let body = resp.bytes().await?;
                    anyhow::Ok((status, body.len()))
                }
                .await;
                match outcome {
                    Ok((status, _)) if status.is_success() => took[which].push(t0.elapsed()),
                    Ok((status, _)) => {
                        failed[which] += 1;
                        if failures.len() < 5 {
                            failures.push(format!("GET {}: {status}", urls[which]));
                        }
                    }
                    Err(e) => {
                        failed[which] += 1;
                        if failures.len() < 5 {
                            failures.push(format!("GET {}: {e:#}", urls[which]));
                        }
                    }
                }
            }
            (took, failed, failures)
        });
    }
    let mut per_endpoint: Vec<(Vec<Duration>, usize)> = vec![(Vec::new(), 0); endpoints.len()];
    let mut failures = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (took, failed, f) = joined.context("a load client panicked")?;
        for (i, (t, e)) in took.into_iter().zip(failed).enumerate() {
            per_endpoint[i].0.extend(t);
            per_endpoint[i].1 += e;
        }
        failures.extend(f);
    }
    failures.truncate(5);
    Ok(LoadResult {
        clients,
        elapsed: started.elapsed(),
        per_endpoint,
        failures,
    })
}

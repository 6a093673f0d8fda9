//! Simulated upstream servers: real HTTP servers on 127.0.0.1 that speak the upstream wire
//! formats (pagination, auth, errors on demand). Used by tests, benchmarks and `okrsync demo`.

pub mod dataset;
pub mod faults;
pub mod github;
pub mod gitlab;
pub mod jira;
mod jql;
pub mod sheets;
pub mod tls;

pub use jira::JiraSim;

use std::sync::{Mutex, PoisonError};

use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// A simulator's HTTP server, serving until it is dropped (or [`Server::stop`] is called).
pub struct Server {
    stop: Mutex<Option<oneshot::Sender<()>>>,
}

impl Server {
    /// Serves `app` on an already bound listener (simulators bind first, because their
    /// state needs the address for absolute URLs).
    pub fn serve(listener: TcpListener, app: axum::Router) -> Server {
        Server::spawn(nodelay(listener), app)
    }

    /// Serves `app` over TLS with `ca`'s server certificate; plain HTTP without one.
    pub fn serve_maybe_tls(
        listener: TcpListener,
        app: axum::Router,
        ca: Option<&tls::TestCa>,
    ) -> Server {
        match ca {
            Some(ca) => Server::spawn(ca.listener(listener), app),
            None => Server::spawn(nodelay(listener), app),
        }
    }

    fn spawn<L>(listener: L, app: axum::Router) -> Server
    where
        L: axum::serve::Listener,
        L::Addr: std::fmt::Debug,
    {
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Server {
            stop: Mutex::new(Some(tx)),
        }
    }

    /// Stops accepting requests; requests under way finish.
    pub fn stop(&self) {
        if let Some(tx) = self
            .stop
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            let _ = tx.send(());
        }
    }
}

/// Accepted connections send without Nagle's delay, as a real server's front end does
/// (nginx's `tcp_nodelay`): the last part of an answer is not held back until the client
/// acknowledges the part before, which a client delays by up to 40 ms.
fn nodelay(listener: TcpListener) -> impl axum::serve::Listener<Addr = std::net::SocketAddr> {
    use axum::serve::ListenerExt;
    listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    })
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

//! Name resolution for outbound requests, with the address policy applied
//! to every answer (SPEC §6). The connector dials only the addresses this
//! returns, so a connection is pinned to a checked address. The resolver is
//! injectable: tests map their host names to addresses and never touch DNS.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::client::legacy::connect::dns::Name;
use orghooks_core::url_policy::{AddressPolicy, BlockedRange};

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Turns a host name into addresses.
pub trait Resolve: Send + Sync + 'static {
    fn resolve(&self, host: &str) -> BoxFuture<io::Result<Vec<IpAddr>>>;
}

/// The operating system's resolver.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve(&self, host: &str) -> BoxFuture<io::Result<Vec<IpAddr>>> {
        let host = host.to_owned();
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((host.as_str(), 0)).await?;
            Ok(addrs.map(|a| a.ip()).collect())
        })
    }
}

/// Resolves within a deadline and keeps only the addresses the policy allows.
#[derive(Clone)]
pub struct PolicyResolver {
    inner: Arc<dyn Resolve>,
    policy: AddressPolicy,
    timeout: Duration,
}

/// What resolving a host for delivery found.
#[derive(Debug)]
pub enum Checked {
    Allowed(Vec<IpAddr>),
    /// Every address is blocked; the first, with its range, for the message.
    Blocked(IpAddr, BlockedRange),
}

impl PolicyResolver {
    pub fn new(inner: Arc<dyn Resolve>, policy: AddressPolicy, timeout: Duration) -> Self {
        Self {
            inner,
            policy,
            timeout,
        }
    }

    pub async fn check(&self, host: &str) -> io::Result<Checked> {
        let ips = tokio::time::timeout(self.timeout, self.inner.resolve(host))
            .await
            .map_err(|_| {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "resolving {host} took longer than {} ms",
                        self.timeout.as_millis()
                    ),
                )
            })??;
        let mut blocked = None;
        let allowed: Vec<IpAddr> = ips
            .into_iter()
            .filter(|ip| match self.policy.check(*ip) {
                Ok(()) => true,
                Err(range) => {
                    blocked.get_or_insert((*ip, range));
                    false
                }
            })
            .collect();
        match (allowed.is_empty(), blocked) {
            (true, Some((ip, range))) => Ok(Checked::Blocked(ip, range)),
            (true, None) => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{host} has no addresses"),
            )),
            (false, _) => Ok(Checked::Allowed(allowed)),
        }
    }
}

/// A destination the address policy refused: nothing was dialled.
#[derive(Debug, thiserror::Error)]
#[error(
    "refused before connecting: {host} resolves to {ip}, a {range} address that is not allow-listed"
)]
pub struct Refused {
    host: String,
    ip: IpAddr,
    range: BlockedRange,
}

/// The error the connector reports for a refused destination.
pub fn blocked_error(host: &str, ip: IpAddr, range: BlockedRange) -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        Refused {
            host: host.to_owned(),
            ip,
            range,
        },
    )
}

/// Whether `e` or one of its causes is a [`Refused`] destination.
pub fn is_refused(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(err) = cause {
        let inner = err.downcast_ref::<io::Error>().and_then(io::Error::get_ref);
        if err.is::<Refused>() || inner.is_some_and(|i| i.is::<Refused>()) {
            return true;
        }
        cause = err.source();
    }
    false
}

impl tower::Service<Name> for PolicyResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = io::Error;
    type Future = BoxFuture<io::Result<Self::Response>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let host = name.as_str();
            match this.check(host).await? {
                Checked::Allowed(ips) => Ok(ips
                    .into_iter()
                    .map(|ip| SocketAddr::new(ip, 0))
                    .collect::<Vec<_>>()
                    .into_iter()),
                Checked::Blocked(ip, range) => Err(blocked_error(host, ip, range)),
            }
        })
    }
}

//! `peergroup run --metrics ADDR`: the node's counters and gauges in the OpenMetrics text
//! format (through `prometheus-client`), served over HTTP/1.1 at `http://ADDR/metrics` for
//! a Prometheus-style scraper. Off unless asked; bind it to a loopback or private address
//! (it needs no credentials and tells how busy the node is, not what the group holds).
//!
//! Each scrape reads a fresh snapshot: the group's counters ([`peergroup::GroupStats`]), its
//! links, members and running syncs, the event buffer, and the endpoint's handshakes and
//! unread bytes. Requests are bounded: [`MAX_SCRAPERS`] connections at once, each closed
//! after [`SCRAPE_TIMEOUT`].

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};
use peergroup::{Group, GroupStats, Infrastructure, TransportStats};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Scrape connections served at once; more wait in the listen queue.
pub(crate) const MAX_SCRAPERS: usize = 4;
/// How long one scrape connection may take, from accept to the end of its answer.
pub(crate) const SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);
/// The OpenMetrics text format's media type.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What one scrape reports.
#[derive(Clone, Debug, Default)]
pub(crate) struct Snapshot {
    /// The group's peer name (the `group` label).
    pub(crate) group: String,
    pub(crate) stats: GroupStats,
    pub(crate) neighbors: usize,
    pub(crate) direct: usize,
    pub(crate) members: usize,
    pub(crate) present: usize,
    pub(crate) syncs_running: usize,
    pub(crate) event_buffer_bytes: usize,
    pub(crate) transport: Option<TransportStats>,
}

impl Snapshot {
    /// Reads the running group and its infrastructure.
    pub(crate) async fn take(infra: &Infrastructure, group: &Group) -> Result<Snapshot> {
        let members = group.members(false).await?;
        Ok(Snapshot {
            group: group.peer_name().to_string(),
            stats: group.stats().await?,
            neighbors: group.neighbor_connections().await?.len(),
            direct: group.direct_connections().len(),
            present: members.iter().filter(|m| m.present).count(),
            members: members.len(),
            syncs_running: group.sync_progress().await?.running,
            event_buffer_bytes: group.buffered_event_bytes(),
            transport: infra.transport_stats(),
        })
    }

    /// The snapshot in the OpenMetrics text format (ends with `# EOF`).
    pub(crate) fn encode(&self) -> String {
        let mut m = Metrics::new();
        let g = || vec![("group".to_owned(), self.group.clone())];
        let with = |k: &str, v: &str| {
            let mut l = g();
            l.push((k.to_owned(), v.to_owned()));
            l
        };
        let s = &self.stats;
        m.gauge(
            "neighbors",
            "Mesh links to other members",
            [(g(), self.neighbors)],
        );
        m.gauge(
            "direct_connections",
            "Direct connections open",
            [(g(), self.direct)],
        );
        m.gauge("members", "Members the group knows", [(g(), self.members)]);
        m.gauge(
            "members_present",
            "Members present now",
            [(g(), self.present)],
        );
        m.gauge(
            "syncs_running",
            "Sync sessions running",
            [(g(), self.syncs_running)],
        );
        m.gauge(
            "event_buffer_bytes",
            "Bytes of events waiting for the application",
            [(g(), self.event_buffer_bytes)],
        );
        m.counter(
            "floods",
            "Record payloads flooded, by direction",
            [
                (with("direction", "sent"), s.floods_sent),
                (with("direction", "received"), s.floods_received),
            ],
        );
        m.counter(
            "duplicate_floods",
            "Flooded payloads received that were already held",
            [(g(), s.duplicate_floods)],
        );
        m.counter(
            "records_delivered",
            "Records first learned, by how",
            [
                (with("by", "flood"), s.delivered_by_flood),
                (with("by", "sync"), s.delivered_by_sync),
            ],
        );
        m.counter(
            "pulls_judged",
            "Pulled records, by whether the tree's push of each came later (late) or not (lost)",
            [
                (with("judged", "late"), s.pushes_after_pull),
                (with("judged", "lost"), s.pulls_without_push),
            ],
        );
        m.counter(
            "messages_sent",
            "Mesh messages sent",
            [(g(), s.messages_sent)],
        );
        m.counter(
            "syncs",
            "Sync sessions ended, by outcome",
            [
                (with("outcome", "completed"), s.syncs),
                (with("outcome", "abandoned"), s.syncs_abandoned),
            ],
        );
        m.counter(
            "refusals",
            "What the node refused or ignored, by reason",
            [
                (with("reason", "link_over_bound"), s.links_refused),
                (with("reason", "sync_too_fast"), s.syncs_refused),
                (
                    with("reason", "announcement_over_bound"),
                    s.announcements_ignored,
                ),
                (with("reason", "punch_over_rate"), s.punches_refused),
                (with("reason", "relay_refused"), s.relays_refused),
                (with("reason", "relay_cut"), s.relays_cut),
            ],
        );
        m.counter("punches", "Hole punches dialed", [(g(), s.punches)]);
        m.counter(
            "relays_served",
            "Circuits relayed for other members",
            [(g(), s.relays_served)],
        );
        m.counter(
            "relayed_bytes",
            "Bytes relayed for other members",
            [(g(), s.relayed_bytes)],
        );
        if let Some(t) = &self.transport {
            let h = &t.handshakes;
            let none = Vec::new;
            m.gauge(
                "handshakes_pending",
                "Incoming handshakes pending",
                [(none(), h.pending)],
            );
            m.gauge(
                "receive_queue_bytes",
                "Bytes received and not yet read, all connections",
                [(none(), t.unread_bytes)],
            );
            m.counter(
                "received_bytes",
                "Bytes of frames received, all connections",
                [(none(), t.received_bytes)],
            );
            let reason = |r: &str| vec![("reason".to_owned(), r.to_owned())];
            m.counter(
                "handshakes_admitted",
                "Incoming connections admitted as pending handshakes",
                [(none(), h.admitted)],
            );
            m.counter(
                "handshakes_closed",
                "Incoming connections closed before their handshake ended, by reason",
                [
                    (reason("over_bound"), h.refused),
                    (reason("evicted"), h.evicted),
                    (reason("silent"), h.silent_timeouts),
                ],
            );
        }
        m.finish()
    }
}

type Labels = Vec<(String, String)>;

/// A registry filled from one snapshot.
struct Metrics(Registry);

impl Metrics {
    fn new() -> Self {
        Metrics(Registry::with_prefix("peergroup"))
    }

    fn counter<const N: usize>(&mut self, name: &str, help: &str, rows: [(Labels, u64); N]) {
        let family = Family::<Labels, Counter>::default();
        for (labels, value) in rows {
            family.get_or_create(&labels).inc_by(value);
        }
        self.0.register(name, help, family);
    }

    fn gauge<const N: usize>(&mut self, name: &str, help: &str, rows: [(Labels, usize); N]) {
        let family = Family::<Labels, Gauge>::default();
        for (labels, value) in rows {
            family
                .get_or_create(&labels)
                .set(i64::try_from(value).unwrap_or(i64::MAX));
        }
        self.0.register(name, help, family);
    }

    fn finish(self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.0);
        out
    }
}

/// Binds `addr` and serves the snapshots of `group` at `/metrics` until the process ends.
/// Returns the address bound (its port, when `addr` asked for port 0).
pub(crate) async fn serve(
    addr: SocketAddr,
    infra: Infrastructure,
    group: Group,
) -> Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot serve metrics on {addr}"))?;
    let bound = listener.local_addr()?;
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_SCRAPERS));
    let source = Arc::new((infra, group));
    tokio::spawn(async move {
        loop {
            let Ok(permit) = slots.clone().acquire_owned().await else {
                return;
            };
            let Ok((stream, _)) = listener.accept().await else {
                // Out of files, say: try again in a moment rather than spin.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let source = source.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let source = source.clone();
                    async move { Ok::<_, Infallible>(answer(&req, &source.0, &source.1).await) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .keep_alive(false)
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
                let _ = tokio::time::timeout(SCRAPE_TIMEOUT, conn).await;
                drop(permit);
            });
        }
    });
    Ok(bound)
}

async fn answer<B>(
    req: &Request<B>,
    infra: &Infrastructure,
    group: &Group,
) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, kind: &'static str, body: String| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = status;
        r.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static(kind),
        );
        r
    };
    if req.method() != hyper::Method::GET {
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "only GET\n".into(),
        );
    }
    if req.uri().path() != "/metrics" {
        return reply(
            StatusCode::NOT_FOUND,
            "text/plain",
            "metrics are at /metrics\n".into(),
        );
    }
    match Snapshot::take(infra, group).await {
        Ok(s) => reply(StatusCode::OK, CONTENT_TYPE, s.encode()),
        Err(e) => reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            format!("the group did not answer: {e:#}\n"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_is_openmetrics_text_with_every_family_once() {
        let mut s = Snapshot {
            group: "0123.group".into(),
            neighbors: 3,
            present: 2,
            members: 5,
            transport: Some(TransportStats {
                unread_bytes: 42,
                received_bytes: 1000,
                ..TransportStats::default()
            }),
            ..Snapshot::default()
        };
        s.stats.floods_sent = 7;
        s.stats.links_refused = 9;
        s.stats.pulls_without_push = 4;
        let text = s.encode();
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert!(
            text.contains("peergroup_neighbors{group=\"0123.group\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("peergroup_floods_total{group=\"0123.group\",direction=\"sent\"} 7\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "peergroup_refusals_total{group=\"0123.group\",reason=\"link_over_bound\"} 9\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("peergroup_pulls_judged_total{group=\"0123.group\",judged=\"lost\"} 4\n"),
            "{text}"
        );
        assert!(
            text.contains("peergroup_receive_queue_bytes 42\n"),
            "{text}"
        );
        assert!(
            text.contains("peergroup_received_bytes_total 1000\n"),
            "{text}"
        );
        // One TYPE line per family (OpenMetrics allows a family once).
        let mut types: Vec<&str> = text.lines().filter(|l| l.starts_with("# TYPE ")).collect();
        let n = types.len();
        types.sort_unstable();
        types.dedup();
        assert_eq!(types.len(), n, "{text}");
        // Every other line is a sample: name{labels} value.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (name, value) = line.rsplit_once(' ').expect(line);
            assert!(name.starts_with("peergroup_"), "{line}");
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
    }
}

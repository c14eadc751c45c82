//! Server-sent events: `GET /v1/events` (everything) and `GET /v1/orders/{id}/events` (one
//! order), with exact resume from `Last-Event-ID`, also across restarts.
//!
//! Each durable log record becomes zero or more API events. An event's id is
//! `"{lsn}.{idx}"`: the record's log position and the event's index among the events of that
//! record (over the unfiltered list, so ids are the same on both streams). `Last-Event-ID: N.M`
//! resumes after event M of record N; `N` resumes after all of record N.
//!
//! A stream subscribes to the live feed first, then replays history from the log up to the
//! position the subscription started at, then forwards live records past that position, so no
//! record is missed or sent twice. Each connection has a bounded buffer; a connection whose
//! live subscription falls too far behind is closed (the client reconnects with
//! `Last-Event-ID` and catches up from the log).
//!
//! `?types=a,b` keeps only events of those types (names from [`EVENT_TYPES`]); ids still
//! count every event of a record, so a filtered stream resumes exactly like an unfiltered one.
//!
//! `inventory.changed` carries a pair's figures after its record, the fold of every record's
//! stock changes in LSN order (`domain::stock_changes`). Live, the feed folds them as it
//! publishes. Replaying history, a stream cannot start that fold at its resume position (the
//! log before it may be compacted), so it reads its history twice: first summing each pair's
//! changes, then asking the feed for those pairs' figures (and the position they are at: it
//! sums the few records published since it subscribed too), then emitting, starting each pair
//! from its figures less its sum. Both ways give the figures
//! of the same fold, so a client folding `inventory.changed` from `Last-Event-ID: 0` ends with
//! the pairs' figures.
//!
//! A resume position beyond the newest record is refused (`422`): no event has that id, and
//! reading "after" it would mean nothing. Replaying history reads log segments, so at most
//! `stream_replays_max` streams replay at once; the next gets `503` with `Retry-After` (a
//! stream with nothing to replay needs no permit).

use super::api_event::{EVENT_TYPES, EventMapper, event_id, record_order};
use super::error::ApiError;
use super::extract::{Read, query_pairs};
use super::log_figures::{ReadFailed, deltas, read_chunk, starting_figures};
use super::orders::order_id;
use super::state::AppState;
use super::token::TOKEN_LEN_MAX;
use crate::domain::OrderId;
use crate::domain::stock_changes::{PairFigures, StockFigures};
use crate::engine::{Committed, Engine, ReplayPermit, Subscription};
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

/// Events buffered per connection between the producer task and the socket.
pub const CONNECTION_BUFFER_EVENTS: usize = 256;
/// Records read from the log per history chunk.
pub use super::log_figures::HISTORY_CHUNK_RECORDS;
/// Interval of keep-alive comments, in seconds.
pub const KEEP_ALIVE_SECS: u64 = 15;

/// Where a stream resumes: after event `idx` of record `lsn`, or after all of `lsn`.
/// `lsn` is at most the newest published LSN (checked when the stream opens).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resume {
    pub lsn: u64,
    pub idx: Option<u64>,
}

impl Resume {
    pub fn parse(s: &str) -> Option<Resume> {
        let digits = |t: &str| !t.is_empty() && t.len() <= 20 && t.bytes().all(|b| b.is_ascii_digit());
        match s.split_once('.') {
            Some((l, i)) if digits(l) && digits(i) => Some(Resume {
                lsn: l.parse().ok()?,
                idx: Some(i.parse().ok()?),
            }),
            None if digits(s) => Some(Resume {
                lsn: s.parse().ok()?,
                idx: None,
            }),
            _ => None,
        }
    }

    /// The first LSN whose events may come after this position.
    fn first_lsn(&self) -> u64 {
        match self.idx {
            Some(_) => self.lsn,
            None => self.lsn.saturating_add(1),
        }
        .max(1)
    }

    /// True if event `idx` of record `lsn` comes after this position.
    fn after(&self, lsn: u64, idx: usize) -> bool {
        match self.idx {
            _ if lsn != self.lsn => lsn > self.lsn,
            Some(m) => idx as u64 > m,
            None => false,
        }
    }
}

/// `GET /v1/events`.
#[utoipa::path(get, path = "/v1/events", operation_id = "events", tag = "events",
    summary = "Every change, as server-sent events",
    params(super::doc::ResumeQuery, ("Last-Event-ID" = Option<String>, Header, pattern = "^[0-9]{1,19}(\\.[0-9]{1,19})?$", description = "Resume after this event id (N or N.M); an id beyond the newest event is 422")),
    responses((status = 200, description = "An endless `text/event-stream`", body = super::doc::SseEventJson, content_type = "text/event-stream"),
        (status = 422, response = inline(super::doc::Invalid))))]
pub async fn all(State(state): State<AppState>, read: Read) -> Result<Response, ApiError> {
    let (resume, types) = stream_query(&read)?;
    stream(state, read.engine, None, resume, types)
}

/// `GET /v1/orders/{id}/events`.
#[utoipa::path(get, path = "/v1/orders/{id}/events", operation_id = "orderEvents", tag = "events",
    summary = "One order's changes, as server-sent events",
    params(super::doc::OrderPath, super::doc::ResumeQuery, ("Last-Event-ID" = Option<String>, Header, pattern = "^[0-9]{1,19}(\\.[0-9]{1,19})?$", description = "Resume after this event id (N or N.M); an id beyond the newest event is 422")),
    responses((status = 200, description = "An endless `text/event-stream`", body = super::doc::SseEventJson, content_type = "text/event-stream"),
        (status = 404, response = inline(super::doc::NotFound)),
        (status = 422, response = inline(super::doc::Invalid))))]
pub async fn of_order(State(state): State<AppState>, read: Read) -> Result<Response, ApiError> {
    let id = order_id(read.param("id"))?;
    let (resume, types) = stream_query(&read)?;
    read.engine.order(id).await?;
    stream(state, read.engine, Some(id), resume, types)
}

/// The event types a stream keeps (`None`: all).
type Types = Option<Vec<&'static str>>;

/// Where to resume and which types to keep, from the query and `Last-Event-ID`.
fn stream_query(read: &Read) -> Result<(Option<Resume>, Types), ApiError> {
    // `access_token` was checked by the middleware (a stream token, when API keys are on).
    let mut query = query_pairs(&read.uri, &["last_event_id", "types", "access_token"])?;
    let tokens: Vec<&String> = query
        .iter()
        .filter(|(k, _)| k == "access_token")
        .map(|(_, v)| v)
        .collect();
    if tokens.len() > 1 || tokens.iter().any(|t| t.is_empty() || t.len() > TOKEN_LEN_MAX) {
        return Err(ApiError::field(
            "access_token",
            format!("must be given at most once, 1 to {TOKEN_LEN_MAX} characters"),
        ));
    }
    query.retain(|(k, _)| k != "access_token");
    let mut types = None;
    let mut i = 0;
    while i < query.len() {
        if query[i].0 == "types" {
            if types.is_some() {
                return Err(ApiError::field(
                    "types",
                    "must be given at most once (a comma-separated list)",
                ));
            }
            types = Some(parse_types(&query.remove(i).1)?);
        } else {
            i += 1;
        }
    }
    Ok((resume_of(read, &query)?, types))
}

/// `a,b,c`: each a type of the catalogue.
fn parse_types(v: &str) -> Result<Vec<&'static str>, ApiError> {
    let mut out = Vec::new();
    for t in v.split(',') {
        match EVENT_TYPES.iter().find(|k| **k == t) {
            Some(k) => out.push(*k),
            None => {
                return Err(ApiError::field(
                    "types",
                    format!("{t:?} is not an event type; the types are {}", EVENT_TYPES.join(", ")),
                ));
            }
        }
    }
    Ok(out)
}

fn resume_of(read: &Read, query: &[(String, String)]) -> Result<Option<Resume>, ApiError> {
    let header = read.headers.get("last-event-id").map(|v| v.to_str().unwrap_or("\u{0}"));
    // Every value given is checked, also a query value the header overrides.
    let parse =
        |field: &str, s: &str| Resume::parse(s).ok_or_else(|| ApiError::field(field, "must be an event id: N or N.M"));
    let from_query = match query {
        [] => None,
        [(_, v)] => Some(parse("last_event_id", v)?),
        _ => return Err(ApiError::field("last_event_id", "must be given at most once")),
    };
    match header {
        Some(s) => parse("Last-Event-ID", s).map(Some),
        None => Ok(from_query),
    }
}

fn stream(
    state: AppState,
    engine: Engine,
    order: Option<OrderId>,
    resume: Option<Resume>,
    types: Types,
) -> Result<Response, ApiError> {
    // Subscribed before the response is returned: everything durable after this point reaches
    // the client, even if the producer task has not started yet.
    let (live, upto) = engine.subscribe();
    let replay = match resume {
        Some(r) if r.lsn > upto => {
            return Err(ApiError::field(
                "Last-Event-ID",
                format!("is beyond the newest event: the log ends at position {upto}"),
            ));
        }
        Some(r) if r.first_lsn() <= upto => Some(engine.replay_permit()?),
        _ => None,
    };
    let (tx, rx) = mpsc::channel::<Event>(CONNECTION_BUFFER_EVENTS);
    let shutdown = state.shutdown_signal();
    let connections = state.metrics().sse_connections.clone();
    connections.fetch_add(1, Ordering::Relaxed);
    tokio::spawn(async move {
        let mut producer = Producer {
            mapper: EventMapper::new(engine.clone()),
            engine,
            order,
            resume,
            types,
            tx,
            figures: StockFigures::default(),
        };
        tokio::select! {
            _ = producer.run(live, upto, replay) => {}
            _ = wait_shutdown(shutdown) => {}
        }
        // The engine handle goes before the count drops, so a count of zero means no stream
        // holds the engine any more.
        drop(producer);
        connections.fetch_sub(1, Ordering::Relaxed);
    });
    let body = ReceiverStream::new(rx).map(Ok::<_, Infallible>);
    Ok(Sse::new(body)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(KEEP_ALIVE_SECS)))
        .into_response())
}

async fn wait_shutdown(mut rx: tokio::sync::watch::Receiver<bool>) {
    // An error means the state is gone: treat it as shutdown.
    let _ = rx.wait_for(|stop| *stop).await;
}

struct Producer {
    engine: Engine,
    order: Option<OrderId>,
    resume: Option<Resume>,
    types: Types,
    tx: mpsc::Sender<Event>,
    mapper: EventMapper,
    /// Replaying history: the fold of stock changes, from the starting figures computed back
    /// from the feed's (see the module comment).
    figures: StockFigures,
}

/// Why a producer stopped.
enum Stop {
    /// The client went away.
    Gone,
}

impl Producer {
    /// Replays history up to `upto` (holding `replay`, the leave to read the log), then
    /// forwards live records.
    async fn run(&mut self, mut live: Subscription, upto: u64, replay: Option<ReplayPermit>) {
        if self.history(upto).await.is_err() {
            return;
        }
        drop(replay);
        loop {
            let next = tokio::select! {
                r = live.recv() => r,
                _ = self.tx.closed() => return,
            };
            match next {
                Ok(c) if c.lsn <= upto => {}
                Ok(c) => {
                    let figures = c.figures.clone().unwrap_or_else(|| Arc::new([]));
                    if self.emit(&c, &figures).await.is_err() {
                        return;
                    }
                }
                Err(crate::engine::RecvError::Lagged(n)) => {
                    tracing::debug!(skipped = n, "event stream fell behind; closing it");
                    let _ = self.tx.try_send(Event::default().comment(format!(
                        "this connection fell {n} records behind and is closed; reconnect with Last-Event-ID"
                    )));
                    return;
                }
                Err(crate::engine::RecvError::Closed) => return,
            }
        }
    }

    /// Reads records `from..=upto` of the log, at most a chunk.
    async fn read_chunk(&self, from: u64, upto: u64) -> Result<(u64, Vec<Committed>), Stop> {
        read_chunk(&self.engine, from, upto).await.map_err(Stop::from)
    }

    /// The first pass over history: the figures of each pair it touches, before `from`
    /// (`log_figures::starting_figures`). Returns the LSN the figures are before (later than
    /// `from` if the log was compacted).
    async fn starting_figures(&mut self, from: u64, upto: u64) -> Result<u64, Stop> {
        let (figures, counted_from) = starting_figures(&self.engine, from, upto).await?;
        self.figures = figures;
        Ok(counted_from)
    }

    /// Replays records after the resume position up to `upto` from the log.
    async fn history(&mut self, upto: u64) -> Result<(), Stop> {
        let Some(resume) = self.resume else {
            return Ok(());
        };
        let mut from = resume.first_lsn();
        let mut counted_from = self.starting_figures(from, upto).await?;
        while from <= upto {
            let (readable, chunk) = self.read_chunk(from, upto).await?;
            let (Some(first), Some(last)) = (chunk.first().map(|c| c.lsn), chunk.last().map(|c| c.lsn)) else {
                break;
            };
            if first > from {
                let note = format!(
                    "events before log position {readable} were compacted into a snapshot and cannot be replayed; continuing from there"
                );
                self.send(Event::default().comment(note)).await?;
                if first > counted_from {
                    // Compacted after the first pass, which counted records this one cannot
                    // send: count again from here.
                    counted_from = self.starting_figures(first, upto).await?;
                }
            }
            for c in &chunk {
                let deltas = deltas(&self.engine, c).await;
                let figures = self.figures.apply(deltas);
                self.emit(c, &figures).await?;
            }
            from = last + 1;
        }
        Ok(())
    }

    async fn send(&self, ev: Event) -> Result<(), Stop> {
        self.tx.send(ev).await.map_err(|_| Stop::Gone)
    }

    async fn emit(&mut self, c: &Committed, figures: &[PairFigures]) -> Result<(), Stop> {
        if let Some(want) = self.order
            && record_order(&c.record) != Some(want)
        {
            return Ok(());
        }
        let events = self.mapper.events(c, figures).await;
        for (idx, ev) in events.into_iter().enumerate() {
            if self.resume.is_some_and(|r| !r.after(c.lsn, idx)) {
                continue;
            }
            if self.order.is_some() && ev.order_id != self.order {
                continue;
            }
            if self.types.as_ref().is_some_and(|t| !t.contains(&ev.kind)) {
                continue;
            }
            let out = Event::default()
                .id(event_id(c.lsn, idx))
                .event(ev.kind)
                .data(ev.data.to_string());
            self.send(out).await?;
        }
        Ok(())
    }
}

impl From<ReadFailed> for Stop {
    fn from(_: ReadFailed) -> Stop {
        Stop::Gone
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_positions_parse() {
        assert_eq!(Resume::parse("12"), Some(Resume { lsn: 12, idx: None }));
        assert_eq!(Resume::parse("12.3"), Some(Resume { lsn: 12, idx: Some(3) }));
        for bad in ["", ".", "1.", ".1", "a", "1.2.3", "-1", "1.x"] {
            assert_eq!(Resume::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn resume_skips_what_was_seen() {
        let r = Resume { lsn: 5, idx: Some(1) };
        assert!(!r.after(4, 9));
        assert!(!r.after(5, 0));
        assert!(!r.after(5, 1));
        assert!(r.after(5, 2));
        assert!(r.after(6, 0));
        let whole = Resume { lsn: 5, idx: None };
        assert!(!whole.after(5, 7));
        assert!(whole.after(6, 0));
    }
}

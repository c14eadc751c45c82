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
//! A resume position beyond the newest record is refused (`422`): no event has that id, and
//! reading "after" it would mean nothing. Replaying history reads log segments, so at most
//! `stream_replays_max` streams replay at once; the next gets `503` with `Retry-After` (a
//! stream with nothing to replay needs no permit).

use super::api_event::{ApiEvent, EventMapper, event_id, record_order};
use super::error::ApiError;
use super::extract::{Read, query_pairs};
use super::orders::order_id;
use super::state::AppState;
use crate::domain::OrderId;
use crate::engine::{Committed, Engine, ReplayPermit, Subscription};
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

/// Events buffered per connection between the producer task and the socket.
pub const CONNECTION_BUFFER_EVENTS: usize = 256;
/// Records read from the log per history chunk.
pub const HISTORY_CHUNK_RECORDS: usize = 512;
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
    let resume = resume_of(&read)?;
    stream(state, read.engine, None, resume)
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
    let resume = resume_of(&read)?;
    read.engine.order(id).await?;
    stream(state, read.engine, Some(id), resume)
}

fn resume_of(read: &Read) -> Result<Option<Resume>, ApiError> {
    let query = query_pairs(&read.uri, &["last_event_id"])?;
    let header = read.headers.get("last-event-id").map(|v| v.to_str().unwrap_or("\u{0}"));
    // Every value given is checked, also a query value the header overrides.
    let parse =
        |field: &str, s: &str| Resume::parse(s).ok_or_else(|| ApiError::field(field, "must be an event id: N or N.M"));
    let from_query = match query.as_slice() {
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
            tx,
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
    tx: mpsc::Sender<Event>,
    mapper: EventMapper,
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
                    if self.emit(&c).await.is_err() {
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

    /// Replays records after the resume position up to `upto` from the log.
    async fn history(&mut self, upto: u64) -> Result<(), Stop> {
        let Some(resume) = self.resume else {
            return Ok(());
        };
        let mut from = resume.first_lsn();
        let mut first_chunk = true;
        while from <= upto {
            let engine = self.engine.clone();
            let read = tokio::task::spawn_blocking(move || engine.read_log(from, upto, HISTORY_CHUNK_RECORDS)).await;
            let (first_lsn, chunk) = match read {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, from, "event history could not be read; closing the stream");
                    return Err(Stop::Gone);
                }
                Err(e) => {
                    tracing::error!(error = %e, "event history reader failed");
                    return Err(Stop::Gone);
                }
            };
            if first_chunk && first_lsn > from {
                let note = format!(
                    "events before log position {first_lsn} were compacted into a snapshot and cannot be replayed; continuing from there"
                );
                self.send(Event::default().comment(note)).await?;
            }
            first_chunk = false;
            let Some(last) = chunk.last().map(|c| c.lsn) else {
                break;
            };
            for c in &chunk {
                self.emit(c).await?;
            }
            from = last + 1;
        }
        Ok(())
    }

    async fn send(&self, ev: Event) -> Result<(), Stop> {
        self.tx.send(ev).await.map_err(|_| Stop::Gone)
    }

    async fn emit(&mut self, c: &Committed) -> Result<(), Stop> {
        if let Some(want) = self.order
            && record_order(&c.record) != Some(want)
        {
            return Ok(());
        }
        let events = self.map(c).await;
        for (idx, ev) in events.into_iter().enumerate() {
            if self.resume.is_some_and(|r| !r.after(c.lsn, idx)) {
                continue;
            }
            if self.order.is_some() && ev.order_id != self.order {
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

    async fn map(&mut self, c: &Committed) -> Vec<ApiEvent> {
        self.mapper.events(c).await
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

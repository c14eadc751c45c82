//! [`AppendTicket`]: the handle an append returns, completed by the writer thread.
//!
//! A ticket can be waited on from a plain thread (`wait`, a condition variable) or awaited
//! from any async runtime (`Future`, a stored `Waker`); the crate depends on no runtime.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use parking_lot::{Condvar, Mutex};

use crate::{Lsn, WalError};

/// Completion slot shared by a ticket and the writer thread.
#[derive(Debug, Default)]
pub(crate) struct TicketSlot {
    /// parking_lot mutex: held only to set or take the result and the waker, never across I/O.
    state: Mutex<SlotState>,
    /// Signalled once, when the result is set, for threads blocked in `wait`.
    done: Condvar,
}

#[derive(Debug, Default)]
struct SlotState {
    result: Option<Result<Lsn, WalError>>,
    waker: Option<Waker>,
}

impl TicketSlot {
    /// Sets the outcome and wakes the waiter. Called exactly once, by the writer thread.
    pub(crate) fn complete(&self, result: Result<Lsn, WalError>) {
        let waker = {
            let mut state = self.state.lock();
            assert!(state.result.is_none(), "a ticket is completed once");
            state.result = Some(result);
            state.waker.take()
        };
        self.done.notify_all();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

#[derive(Debug)]
enum TicketState {
    /// Refused at once (or already taken, then `None`).
    Done(Option<Result<Lsn, WalError>>),
    /// Queued; the writer will complete the slot.
    Pending(Arc<TicketSlot>),
}

/// Outcome of one `append` or `append_batch`: resolves to the batch's last LSN once durable
/// (per the sync policy), or to the error that prevented it.
#[derive(Debug)]
#[must_use = "an append is only known durable once its ticket resolves"]
pub struct AppendTicket {
    first_lsn: Lsn,
    state: TicketState,
}

impl AppendTicket {
    pub(crate) fn refused(err: WalError) -> AppendTicket {
        AppendTicket {
            first_lsn: 0,
            state: TicketState::Done(Some(Err(err))),
        }
    }

    pub(crate) fn ready(lsn: Lsn) -> AppendTicket {
        AppendTicket {
            first_lsn: lsn,
            state: TicketState::Done(Some(Ok(lsn))),
        }
    }

    pub(crate) fn pending(first_lsn: Lsn, slot: Arc<TicketSlot>) -> AppendTicket {
        assert!(first_lsn >= 1, "a queued append has an LSN");
        AppendTicket {
            first_lsn,
            state: TicketState::Pending(slot),
        }
    }

    /// LSN of the first record of this append; 0 if the append was refused at once.
    pub fn first_lsn(&self) -> Lsn {
        self.first_lsn
    }

    /// Blocks the thread until the append is durable (per the sync policy) or failed.
    /// Returns the last LSN of the append.
    pub fn wait(self) -> Result<Lsn, WalError> {
        match self.state {
            TicketState::Done(result) => result.expect("ticket not yet resolved"),
            TicketState::Pending(slot) => {
                let mut state = slot.state.lock();
                loop {
                    if let Some(result) = state.result.take() {
                        return result;
                    }
                    slot.done.wait(&mut state);
                }
            }
        }
    }
}

impl Future for AppendTicket {
    type Output = Result<Lsn, WalError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        match &mut this.state {
            TicketState::Done(result) => Poll::Ready(result.take().expect("AppendTicket polled after completion")),
            TicketState::Pending(slot) => {
                let mut state = slot.state.lock();
                if let Some(result) = state.result.take() {
                    drop(state);
                    this.state = TicketState::Done(None);
                    return Poll::Ready(result);
                }
                match &state.waker {
                    Some(waker) if waker.will_wake(cx.waker()) => {}
                    _ => state.waker = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
        }
    }
}

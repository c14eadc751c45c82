//! Actor cells: where an actor's state lives while its task is not running, and how a task is
//! started for it on demand (activation) and ended when idle (passivation), as Akka and Orleans
//! do. A million idle orders are a million `Idle` states, not a million tasks and mailboxes.
//!
//! # Why no accepted message is lost
//!
//! Three parties meet here: senders (any task, any number), the actor (one task per cell at a
//! time, holding the cell's [`Mailbox`]) and the cell's lock, which orders them.
//!
//! 1. A sender gets a mailbox sender only from the cell, under its lock ([`sender`]). It may
//!    keep that clone and use it later, after the lock is released, at any moment.
//! 2. A message is *accepted* when `try_send` succeeds or a send permit is granted; from then on
//!    it is in the channel (or will be, when the permit is used) and only the receiver takes it
//!    out. A send that is refused because the receiver is closed or gone hands the message back
//!    to the sender, which goes back to step 1 with it. A refused message is re-sent, not lost.
//! 3. The actor goes idle only under the lock, and in this order ([`Mailbox::passivate`]):
//!    close the receiver, so that from here on no send and no new permit succeeds (refused
//!    senders re-send, step 2); then look at the receiver's free capacity. Capacity is taken
//!    by every buffered message *and* by every permit granted but not yet used, and after the
//!    close it can no longer be taken. So if all of it is free, nothing was accepted that the
//!    actor has not received, and nothing ever will be: it stores its state (`Idle`) and ends.
//!    Dropping the receiver afterwards drops nothing.
//! 4. If some capacity is taken, a message was accepted after the actor last looked (a sender
//!    raced the idle timer). The actor does not go idle. Still under the lock it installs a
//!    fresh channel (`Active(new sender)`), and it reads the closed receiver to its end before
//!    the fresh one: tokio's `recv` ends on a closed channel only once it is empty and every
//!    permit is used or dropped. Senders refused by the close re-send into the fresh channel;
//!    none waits for the drain and none loops. A sender's messages keep their order: all it
//!    put in the closed channel was accepted before anything it puts in the fresh one.
//! 5. Each refusal is progress. A receiver is closed or dropped only after the slot was changed
//!    in the same critical section (3 or 4), or after the slot was marked `Dead` (6). A sender
//!    refused once therefore finds a different slot when it comes back to step 1: `Idle` (it
//!    starts an actor from the stored state), a fresh `Active`, or `Dead`. No caller spins on a
//!    closed channel. (It could be refused again only if the actor it just started went idle
//!    before its send, which follows at once; an actor waits out its idle timer, a millisecond
//!    at least, before it even tries.)
//! 6. An actor whose task ends without storing its state (it panicked, or its runtime was
//!    dropped) drops its `Mailbox`, whose `Drop` marks the cell `Dead` before the receiver
//!    goes. A dead cell hands out no sender ([`ActorDead`]): callers answer `Unavailable` at
//!    once. The state is gone (it may have been half-changed by the panic), and messages still
//!    in the dead mailbox go with it; their reply channels close, so each caller learns of it.
//!    Rebuilding that state is recovery's job after a restart (the crash-only policy:
//!    ARCHITECTURE.md, "Panics").

use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::mpsc;

enum Slot<S, M> {
    Idle(S),
    Active(mpsc::Sender<M>),
    /// Only between taking the idle state and storing the new sender, under the lock.
    Moving,
    /// The actor ended without storing its state (step 6): nothing will run here again.
    Dead,
}

pub(crate) struct Cell<S, M> {
    slot: Mutex<Slot<S, M>>,
    /// Test hook: the actor panics when it next receives messages (`inject_panic`).
    #[cfg(test)]
    panic_on_receive: std::sync::atomic::AtomicBool,
}

/// Something that owns a cell: the actor's mailbox keeps it alive and reaches the cell through it.
pub(crate) trait HasCell: Send + Sync + 'static {
    type State: Send + 'static;
    type Msg: Send + 'static;
    fn cell(&self) -> &Cell<Self::State, Self::Msg>;
}

/// The cell's actor ended without storing its state (it panicked); nothing runs there again.
#[derive(Debug)]
pub(crate) struct ActorDead;

impl<S, M> Cell<S, M> {
    pub(crate) fn idle(state: S) -> Cell<S, M> {
        Cell {
            slot: Mutex::new(Slot::Idle(state)),
            #[cfg(test)]
            panic_on_receive: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Reads the state if idle (no actor running), else returns `None`.
    pub(crate) fn read_idle<R>(&self, f: impl FnOnce(&S) -> R) -> Option<R> {
        match &*self.slot.lock() {
            Slot::Idle(s) => Some(f(s)),
            _ => None,
        }
    }

    /// Makes the actor panic the next time it receives messages (they are lost with it).
    #[cfg(test)]
    pub(crate) fn inject_panic(&self) {
        self.panic_on_receive.store(true, Ordering::SeqCst);
    }
}

/// The mailbox of `owner`'s running actor, starting one with `spawn` if the state is idle
/// (step 1). `dead_actors` is counted up if this activation's actor ever dies (step 6).
pub(crate) fn sender<O: HasCell>(
    owner: &Arc<O>,
    capacity: usize,
    dead_actors: &Arc<AtomicU64>,
    spawn: impl FnOnce(O::State, Mailbox<O>),
) -> Result<mpsc::Sender<O::Msg>, ActorDead> {
    let mut slot = owner.cell().slot.lock();
    match &*slot {
        Slot::Active(tx) => return Ok(tx.clone()),
        Slot::Dead => return Err(ActorDead),
        Slot::Idle(_) => {}
        Slot::Moving => unreachable!("a cell is never left Moving outside its lock"),
    }
    let Slot::Idle(state) = std::mem::replace(&mut *slot, Slot::Moving) else {
        unreachable!("matched Idle above, under the same lock");
    };
    let (tx, rx) = mpsc::channel(capacity);
    let mailbox = Mailbox {
        owner: owner.clone(),
        rx,
        draining: None,
        capacity,
        stored: false,
        dead_actors: dead_actors.clone(),
    };
    spawn(state, mailbox);
    *slot = Slot::Active(tx.clone());
    Ok(tx)
}

/// The actor's end of its cell: its receiver, and the only way to store its state.
pub(crate) struct Mailbox<O: HasCell> {
    owner: Arc<O>,
    rx: mpsc::Receiver<O::Msg>,
    /// A receiver closed by an abandoned passivation (step 4), read to its end before `rx`.
    draining: Option<mpsc::Receiver<O::Msg>>,
    capacity: usize,
    /// Set once the state is stored; if it never is, `Drop` marks the cell dead.
    stored: bool,
    dead_actors: Arc<AtomicU64>,
}

impl<O: HasCell> Mailbox<O> {
    /// Receives up to `limit` messages into `buf`, the closed mailbox's first. Returns 0 only
    /// when every sender is gone. Cancel-safe, like tokio's `recv_many`.
    pub(crate) async fn recv_many(&mut self, buf: &mut Vec<O::Msg>, limit: usize) -> usize {
        if let Some(closed) = &mut self.draining {
            let n = closed.recv_many(buf, limit).await;
            if n > 0 {
                self.injected_panic();
                return n;
            }
            self.draining = None; // empty, and nothing more can arrive in it
        }
        let n = self.rx.recv_many(buf, limit).await;
        self.injected_panic();
        n
    }

    #[cfg(test)]
    fn injected_panic(&self) {
        if self.owner.cell().panic_on_receive.swap(false, Ordering::SeqCst) {
            panic!("panic injected into an actor by a test");
        }
    }

    #[cfg(not(test))]
    fn injected_panic(&self) {}

    /// Stores `state` and lets the actor end if nothing accepted is left unreceived (step 3);
    /// otherwise keeps the actor running on a fresh mailbox (step 4) and gives the state back.
    pub(crate) fn passivate(&mut self, state: O::State) -> Result<(), O::State> {
        let mut slot = self.owner.cell().slot.lock();
        if self.draining.is_some() {
            return Err(state); // still reading what an earlier attempt left
        }
        self.rx.close();
        if self.rx.capacity() == self.rx.max_capacity() {
            *slot = Slot::Idle(state);
            self.stored = true;
            return Ok(());
        }
        let (tx, rx) = mpsc::channel(self.capacity);
        self.draining = Some(std::mem::replace(&mut self.rx, rx));
        *slot = Slot::Active(tx);
        Err(state)
    }

    /// Stores `state` unconditionally: the actor ends because every sender is gone.
    pub(crate) fn store(&mut self, state: O::State) {
        *self.owner.cell().slot.lock() = Slot::Idle(state);
        self.stored = true;
    }
}

impl<O: HasCell> Drop for Mailbox<O> {
    /// Step 6. Runs before the receivers are dropped (fields drop after this body).
    fn drop(&mut self) {
        if !self.stored {
            *self.owner.cell().slot.lock() = Slot::Dead;
            self.dead_actors.fetch_add(1, Ordering::Relaxed);
            // The panic itself was reported by the panic hook; a runtime dropping its tasks
            // at exit ends here too, which is no error.
            tracing::debug!("an actor ended without storing its state: its cell is dead");
        }
    }
}

#[cfg(test)]
mod tests;

//! Actor cells: where an actor's state lives while its task is not running, and how a task is
//! started for it on demand (activation) and ended when idle (passivation), as Akka and Orleans
//! do. A million idle orders are a million `Idle` states, not a million tasks and mailboxes.
//!
//! The protocol has no lost messages: a sender clones the mailbox sender under the cell lock and
//! sends after releasing it. An actor passivates only under the same lock and only with an empty
//! mailbox; a message sent after that finds the receiver gone, gets the message back in the
//! error, and retries, which activates a fresh actor from the stored state.

use parking_lot::Mutex;
use tokio::sync::mpsc;

pub(crate) enum Slot<S, M> {
    Idle(S),
    Active(mpsc::Sender<M>),
    /// Only between taking the idle state and storing the new sender, under the lock.
    Moving,
}

pub(crate) struct Cell<S, M> {
    slot: Mutex<Slot<S, M>>,
}

impl<S, M> Cell<S, M> {
    pub(crate) fn idle(state: S) -> Cell<S, M> {
        Cell {
            slot: Mutex::new(Slot::Idle(state)),
        }
    }

    /// The mailbox of the running actor, starting one with `spawn` if the state is idle.
    pub(crate) fn sender(&self, capacity: usize, spawn: impl FnOnce(S, mpsc::Receiver<M>)) -> mpsc::Sender<M> {
        let mut slot = self.slot.lock();
        if let Slot::Active(tx) = &*slot {
            return tx.clone();
        }
        let Slot::Idle(state) = std::mem::replace(&mut *slot, Slot::Moving) else {
            unreachable!("a cell is never left Moving outside its lock");
        };
        let (tx, rx) = mpsc::channel(capacity);
        spawn(state, rx);
        *slot = Slot::Active(tx.clone());
        tx
    }

    /// Reads the state if idle (no actor running), else returns `None`.
    pub(crate) fn read_idle<R>(&self, f: impl FnOnce(&S) -> R) -> Option<R> {
        match &*self.slot.lock() {
            Slot::Idle(s) => Some(f(s)),
            _ => None,
        }
    }

    /// Stores `state` and ends the actor if its mailbox is empty; gives the state back if not.
    pub(crate) fn passivate(&self, state: S, rx: &mpsc::Receiver<M>) -> Result<(), S> {
        let mut slot = self.slot.lock();
        if !rx.is_empty() {
            return Err(state);
        }
        *slot = Slot::Idle(state);
        Ok(())
    }

    /// Stores `state` unconditionally: the actor is ending because every sender is gone.
    pub(crate) fn store(&self, state: S) {
        *self.slot.lock() = Slot::Idle(state);
    }
}

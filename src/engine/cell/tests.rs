//! The protocol of `cell.rs`, step by step: most tests stop the actor at one step of the
//! argument and play the sender that races it there; the last runs real tasks against an actor
//! that passivates whenever its mailbox is momentarily empty.

use super::*;
use futures::FutureExt;
use tokio::sync::mpsc::error::TrySendError;

/// A cell whose state is the messages its actors have handled, in order.
struct Owner {
    cell: Cell<Vec<u32>, u32>,
}

impl HasCell for Owner {
    type State = Vec<u32>;
    type Msg = u32;
    fn cell(&self) -> &Cell<Vec<u32>, u32> {
        &self.cell
    }
}

const CAPACITY: usize = 4;

fn owner() -> (Arc<Owner>, Arc<AtomicU64>) {
    let o = Owner {
        cell: Cell::idle(Vec::new()),
    };
    (Arc::new(o), Arc::new(AtomicU64::new(0)))
}

/// An actor started by [`activate`] and not run by any task: its state and mailbox.
type Started = Option<(Vec<u32>, Mailbox<Owner>)>;

/// Gets a sender; if that starts an actor, no task runs it: the test plays the actor with
/// the state and mailbox returned.
fn activate(o: &Arc<Owner>, dead: &Arc<AtomicU64>) -> (mpsc::Sender<u32>, Started) {
    let mut started = None;
    let tx = sender(o, CAPACITY, dead, |s, m| started = Some((s, m))).expect("alive");
    (tx, started)
}

#[tokio::test]
async fn a_send_after_passivation_is_refused_and_then_reaches_a_new_actor() {
    let (o, dead) = owner();
    let (late, started) = activate(&o, &dead);
    let (state, mut mailbox) = started.expect("first activation");
    mailbox.passivate(state).expect("nothing was sent: the actor goes idle");
    // A sender that took its clone before the actor went idle (step 3): refused, not lost.
    let Err(TrySendError::Closed(msg)) = late.try_send(1) else {
        panic!("a message was accepted by an actor that has ended")
    };
    drop(mailbox);
    assert_eq!(dead.load(Ordering::Relaxed), 0, "a passivated actor did not die");
    // Step 2: it re-sends through the cell, which starts a new actor from the stored state.
    let (tx, started) = activate(&o, &dead);
    let (state, mut mailbox) = started.expect("the stored state starts a new actor");
    tx.try_send(msg).unwrap();
    let mut buf = Vec::new();
    assert_eq!(mailbox.recv_many(&mut buf, 8).await, 1);
    assert_eq!((state, buf), (vec![], vec![1]));
}

#[tokio::test]
async fn a_message_accepted_before_passivation_is_received_and_the_actor_stays() {
    let (o, dead) = owner();
    let (tx, started) = activate(&o, &dead);
    let (state, mut mailbox) = started.unwrap();
    tx.try_send(7).unwrap(); // accepted after the actor last looked
    let state = mailbox
        .passivate(state)
        .expect_err("a message is waiting: no passivation");
    assert!(o.cell.read_idle(|_| ()).is_none(), "the actor is still active");
    // The close refuses the old sender; through the cell it reaches the fresh mailbox of the
    // same actor (step 4), not a second actor.
    assert!(matches!(tx.try_send(8), Err(TrySendError::Closed(8))));
    let (fresh, second) = activate(&o, &dead);
    assert!(second.is_none(), "one actor per cell");
    fresh.try_send(8).unwrap();
    let mut buf = Vec::new();
    mailbox.recv_many(&mut buf, 8).await;
    mailbox.recv_many(&mut buf, 8).await;
    assert_eq!(buf, [7, 8], "the closed mailbox first, then the fresh one");
    mailbox.passivate(state).expect("all received: now it goes idle");
    assert_eq!(o.cell.read_idle(|s| s.len()), Some(0));
}

#[tokio::test]
async fn a_permit_granted_before_passivation_is_waited_for() {
    let (o, dead) = owner();
    let (tx, started) = activate(&o, &dead);
    let (state, mut mailbox) = started.unwrap();
    let permit = tx.reserve().await.unwrap(); // room granted, message not yet written
    let state = mailbox.passivate(state).expect_err("a permit is out: no passivation");
    let state = mailbox.passivate(state).expect_err("still draining the closed mailbox");
    permit.send(9);
    let mut buf = Vec::new();
    assert_eq!(mailbox.recv_many(&mut buf, 8).await, 1);
    assert_eq!(buf, [9]);
    // The closed mailbox is at its end: the next receive moves on to the fresh one.
    assert!(mailbox.recv_many(&mut buf, 8).now_or_never().is_none());
    mailbox.passivate(state).expect("nothing left anywhere: idle");
}

#[tokio::test]
async fn an_actor_that_ends_without_storing_its_state_leaves_a_dead_cell() {
    let (o, dead) = owner();
    let (tx, started) = activate(&o, &dead);
    let (_state, mailbox) = started.unwrap();
    tx.try_send(1).unwrap();
    drop(mailbox); // as a panic would: the state is never stored
    assert_eq!(dead.load(Ordering::Relaxed), 1);
    assert!(matches!(tx.try_send(2), Err(TrySendError::Closed(2))));
    assert!(sender(&o, CAPACITY, &dead, |_, _| panic!("no actor starts on a dead cell")).is_err());
    assert!(o.cell.read_idle(|_| ()).is_none());
}

/// An actor loop as the engine's are, except for its idle timer: it passivates as soon as its
/// mailbox is empty again after one yield (the most hostile timer that still lets a sender
/// that just started it send), and it lets others run between going idle and dropping its
/// receiver.
async fn eager_actor(mut state: Vec<u32>, mut mailbox: Mailbox<Owner>) {
    let mut buf = Vec::new();
    loop {
        let mut got = mailbox.recv_many(&mut buf, 8).now_or_never();
        if got.is_none() {
            tokio::task::yield_now().await;
            got = mailbox.recv_many(&mut buf, 8).now_or_never();
        }
        match got {
            None => match mailbox.passivate(state) {
                Ok(()) => {
                    tokio::task::yield_now().await;
                    return drop(mailbox);
                }
                Err(s) => state = s,
            },
            Some(0) => return mailbox.store(state),
            Some(_) => state.append(&mut buf),
        }
    }
}

#[tokio::test]
async fn an_injected_panic_kills_the_actor_and_its_cell() {
    let (o, dead) = owner();
    let mut task = None;
    let tx = sender(&o, CAPACITY, &dead, |s, m| task = Some(tokio::spawn(eager_actor(s, m)))).unwrap();
    o.cell.inject_panic();
    tx.send(1).await.unwrap();
    assert!(task.unwrap().await.unwrap_err().is_panic());
    assert_eq!(dead.load(Ordering::Relaxed), 1);
    assert!(
        sender(&o, CAPACITY, &dead, |_, _| {}).is_err(),
        "a dead cell starts nothing"
    );
}

/// Many senders, each re-sending what is refused (step 2), against [`eager_actor`]: every
/// message is handled exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_message_is_lost_to_passivation_under_concurrent_senders() {
    const SENDERS: u32 = 16;
    const EACH: u32 = 2_000;
    let (o, dead) = owner();
    let mut senders = Vec::new();
    for s in 0..SENDERS {
        let (o, dead) = (o.clone(), dead.clone());
        senders.push(tokio::spawn(async move {
            for i in 0..EACH {
                let mut msg = s * EACH + i;
                let mut first_try = true;
                loop {
                    let tx = sender(&o, CAPACITY, &dead, |st, m| {
                        tokio::spawn(eager_actor(st, m));
                    })
                    .expect("no actor dies here");
                    if first_try && (i + s) % 2 == 0 {
                        // A sender that keeps its clone a while before sending (step 1).
                        tokio::task::yield_now().await;
                    }
                    first_try = false;
                    match tx.send(msg).await {
                        Ok(()) => break,
                        Err(refused) => msg = refused.0,
                    }
                }
                if i % 3 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        }));
    }
    for s in senders {
        s.await.unwrap();
    }
    // Every send was accepted; the last actor goes idle once it has handled everything.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut handled = loop {
        if let Some(h) = o.cell.read_idle(|s| s.clone()) {
            break h;
        }
        assert!(std::time::Instant::now() < deadline, "the actor never went idle");
        tokio::task::yield_now().await;
    };
    let received = handled.len();
    handled.sort_unstable();
    handled.dedup();
    assert_eq!(handled.len(), received, "a message was handled twice");
    assert_eq!(received as u32, SENDERS * EACH, "messages were lost");
    assert_eq!(dead.load(Ordering::Relaxed), 0);
}

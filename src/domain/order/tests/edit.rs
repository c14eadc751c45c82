//! `Edit`: note, tags, metadata and the shipping address.

use super::*;

fn edit(f: impl FnOnce(&mut OrderEdit)) -> OrderCommand {
    let mut edit = OrderEdit::default();
    f(&mut edit);
    OrderCommand::Edit {
        edit: Box::new(edit),
        actor: "key:0a1b2c3d".into(),
    }
}

fn tags(t: &[&str]) -> Vec<String> {
    t.iter().map(|s| s.to_string()).collect()
}

#[test]
fn an_edit_records_what_changed_and_who_changed_it() {
    let address = Address {
        line1: "2 New St".into(),
        city: "Springfield".into(),
        country: "US".into(),
        ..Default::default()
    };
    let cmd = edit(|e| {
        e.note = Some(Some("call first".into()));
        e.tags = Some(tags(&["vip"]));
        e.metadata.insert("erp".into(), Some("42".into()));
        e.shipping_address = Some(address.clone());
    });
    given()
        .paid()
        .when(cmd)
        .then_events(vec![OrderEvent::Edited {
            changes: vec![
                OrderChange::Note(Some("call first".into())),
                OrderChange::Tags(tags(&["vip"])),
                OrderChange::Metadata(BTreeMap::from([("erp".into(), "42".into())])),
                OrderChange::ShippingAddress(address.clone()),
            ],
            actor: "key:0a1b2c3d".into(),
            at: NOW,
        }])
        .unchanged_status(OrderStatus::Confirmed)
        .no_stock()
        .check(|o| {
            assert_eq!(o.extras.note.as_deref(), Some("call first"));
            assert_eq!(o.extras.tags, tags(&["vip"]));
            assert_eq!(o.extras.metadata["erp"], "42");
            assert_eq!(o.shipping_address, address);
            let entry = o.history.last().unwrap();
            assert_eq!(
                (entry.from, entry.to),
                (Some(OrderStatus::Confirmed), OrderStatus::Confirmed)
            );
            assert_eq!(
                (entry.reason.as_ref(), entry.actor.as_ref()),
                ("order edited", "key:0a1b2c3d")
            );
            assert_eq!(entry.metadata["fields"], "note,tags,metadata,shipping_address");
            assert_eq!(entry.at, NOW);
        });
}

#[test]
fn metadata_merges_and_null_removes() {
    let set = edit(|e| {
        e.metadata.insert("a".into(), Some("1".into()));
        e.metadata.insert("b".into(), Some("2".into()));
    });
    given()
        .after(set)
        .when(edit(|e| {
            e.metadata.insert("a".into(), None);
            e.metadata.insert("c".into(), Some("3".into()));
        }))
        .then_event(|_| {})
        .check(|o| {
            let expect = BTreeMap::from([("b".to_string(), "2".to_string()), ("c".into(), "3".into())]);
            assert_eq!(o.extras.metadata, expect);
        });
}

#[test]
fn an_edit_that_changes_nothing_records_nothing() {
    let with_note = given().after(edit(|e| e.note = Some(Some("n".into()))));
    with_note
        .when(edit(|e| {
            e.note = Some(Some("n".into()));
            e.metadata.insert("absent".into(), None);
        }))
        .then_events(vec![]);
    given().when(edit(|_| {})).then_events(vec![]);
    // A note removed is a change.
    given()
        .after(edit(|e| e.note = Some(Some("n".into()))))
        .when(edit(|e| e.note = Some(None)))
        .then_event(|e| {
            assert!(matches!(e, OrderEvent::Edited { changes, .. } if changes == &[OrderChange::Note(None)]))
        })
        .check(|o| assert_eq!(o.extras.note, None));
}

#[test]
fn the_address_is_fixed_once_a_shipment_shipped_and_nothing_changes_after_the_end() {
    let address = Address {
        line1: "x".into(),
        city: "y".into(),
        country: "US".into(),
        ..Default::default()
    };
    given()
        .fulfilled()
        .shipped(0)
        .when(edit(|e| e.shipping_address = Some(address.clone())))
        .then_invalid("edit", "the shipping address cannot change once a shipment has shipped");
    // The note still can.
    given()
        .fulfilled()
        .shipped(0)
        .when(edit(|e| e.note = Some(Some("late".into()))))
        .then_event(|_| {});
    given()
        .after(OrderCommand::Cancel { reason: "r".into() })
        .when(edit(|e| e.note = Some(Some("n".into()))))
        .then_invalid("edit", "a cancelled or refunded order cannot be edited");
}

#[test]
fn edits_are_bounded() {
    given()
        .when(edit(|e| e.tags = Some(tags(&["a", "a"]))))
        .then_invalid_field("tags[1]", "repeats an earlier tag");
    given()
        .when(edit(|e| e.note = Some(Some("n".repeat(limits::NOTE_LEN_MAX + 1)))))
        .then_invalid_field("note", "must be at most 2000 bytes");
    given()
        .when(edit(|e| e.shipping_address = Some(Address::default())))
        .then_invalid_field("shipping_address.line1", "must not be empty");
    // The bound on metadata keys counts what the order already has.
    let full = given().after(edit(|e| {
        for i in 0..limits::METADATA_KEYS_MAX {
            e.metadata.insert(format!("k{i}"), Some("v".into()));
        }
    }));
    full.when(edit(|e| {
        e.metadata.insert("one-more".into(), Some("v".into()));
    }))
    .then_invalid_field("metadata", "must hold at most 50 keys");
}

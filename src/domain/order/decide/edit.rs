//! Editing an order's note, tags, metadata and shipping address: any time before the order
//! ends (cancelled, refunded), the address only while nothing has shipped. Only what actually
//! changes is recorded, with who asked.

use super::invalid;
use crate::domain::order::Order;
use crate::domain::order::command::OrderEdit;
use crate::domain::order::event::{OrderChange, OrderEvent};
use crate::domain::order::limits;
use crate::domain::order::new_order::validate_address;
use crate::domain::{Millis, Rejection};

impl Order {
    /// `Edit`: the changed fields in one `Edited` event, or no event if nothing changes.
    pub(super) fn decide_edit(&self, edit: &OrderEdit, actor: &str, now: Millis) -> Result<Vec<OrderEvent>, Rejection> {
        let st = self.status;
        if st.is_terminal() {
            return Err(invalid(st, "edit", "a cancelled or refunded order cannot be edited"));
        }
        if edit.shipping_address.is_some() && self.any_shipped() {
            return Err(invalid(
                st,
                "edit",
                "the shipping address cannot change once a shipment has shipped",
            ));
        }
        let metadata = self.merged_metadata(edit);
        let mut errs = Vec::new();
        if let Some(Some(n)) = &edit.note {
            limits::note("note", n, &mut errs);
        }
        if let Some(t) = &edit.tags {
            limits::tags("tags", t, &mut errs);
        }
        let entries = metadata.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        limits::metadata("metadata", entries, &mut errs);
        if let Some(a) = &edit.shipping_address {
            validate_address("shipping_address", a, &mut errs);
        }
        limits::finish(errs)?;
        let x = &self.extras;
        let mut changes = Vec::new();
        if let Some(note) = &edit.note
            && *note != x.note
        {
            changes.push(OrderChange::Note(note.clone()));
        }
        if let Some(tags) = &edit.tags
            && *tags != x.tags
        {
            changes.push(OrderChange::Tags(tags.clone()));
        }
        if metadata != x.metadata {
            changes.push(OrderChange::Metadata(metadata));
        }
        if let Some(a) = &edit.shipping_address
            && *a != self.shipping_address
        {
            changes.push(OrderChange::ShippingAddress(a.clone()));
        }
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        Ok(vec![OrderEvent::Edited {
            changes,
            actor: actor.to_string(),
            at: now,
        }])
    }

    /// The metadata after merging the edit's (a value sets its key, `None` removes it).
    fn merged_metadata(&self, edit: &OrderEdit) -> std::collections::BTreeMap<String, String> {
        let mut m = self.extras.metadata.clone();
        for (k, v) in &edit.metadata {
            match v {
                Some(v) => m.insert(k.clone(), v.clone()),
                None => m.remove(k),
            };
        }
        m
    }
}

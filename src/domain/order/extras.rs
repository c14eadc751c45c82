//! What an order gained after log format version 1: the customer's email, a note, tags and
//! metadata, and the units cancelled by partial cancellations. Kept apart from [`Order`](super::Order)'s version-1 fields so those keep their
//! bytes, and stored as a list of attributes so that a later addition is one more attribute,
//! not another format version.
//!
//! On disk (record version 2, snapshot format 3, `codec.rs`) the extras of an order follow
//! the version-1 bytes of the record (and, in a snapshot, the sales section) that holds it, as a postcard sequence of [`OrderAttr`]: only the
//! attributes that differ from their default are written, in variant order. Architecture
//! invariant: `OrderAttr` variants are never reordered or removed; a new one goes at the end.
//! A reader folds the attributes into the default extras, so an attribute an older build did
//! not write is simply its default.

use crate::domain::ids::{Sku, WarehouseId};
use crate::domain::money::Amount;
use rust_decimal::Decimal;
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;

/// The order's later fields, every one defaulting to "none".
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OrderExtras {
    /// The customer's email (validated at placement).
    pub email: Option<String>,
    /// A free-text note for staff.
    pub note: Option<String>,
    /// Short labels, distinct, in the order given.
    pub tags: Vec<String>,
    /// String keys to string values, bounded (`limits.rs`).
    pub metadata: BTreeMap<String, String>,
    /// Units cancelled by partial cancellations, by SKU and warehouse (one entry per pair):
    /// their reservations were released and they are no longer due.
    pub cancelled: Vec<CancelledLine>,
    /// The value of the cancelled units (their share of lines, order discount and tax): no
    /// longer due, and refunded if it was captured.
    pub cancelled_amount: Amount,
    /// Refunds (by index) opened before delivery (goodwill refunds, a partial cancellation's):
    /// their success changes no status.
    pub cancel_refunds: Vec<usize>,
}

/// Units of a SKU cancelled at one warehouse.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CancelledLine {
    pub sku: Sku,
    pub warehouse_id: WarehouseId,
    pub quantity: u64,
}

/// No extras: what an order of format version 1 has.
static NONE: OrderExtras = OrderExtras {
    email: None,
    note: None,
    tags: Vec::new(),
    metadata: BTreeMap::new(),
    cancelled: Vec::new(),
    cancelled_amount: Decimal::ZERO,
    cancel_refunds: Vec::new(),
};

impl OrderExtras {
    pub fn is_empty(&self) -> bool {
        *self == NONE
    }
}

/// An order's extras, allocated only when it has any: most orders carry none, and an order is
/// kept in memory for its whole life. Reads see [`OrderExtras`] (empty when absent); a write
/// through `DerefMut` allocates.
#[derive(Clone, Debug, Default)]
pub struct Extras(Option<Box<OrderExtras>>);

impl Extras {
    pub fn new(extras: OrderExtras) -> Extras {
        if extras.is_empty() {
            Extras(None)
        } else {
            Extras(Some(Box::new(extras)))
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.as_deref().is_none_or(OrderExtras::is_empty)
    }
}

impl std::ops::Deref for Extras {
    type Target = OrderExtras;
    fn deref(&self) -> &OrderExtras {
        self.0.as_deref().unwrap_or(&NONE)
    }
}

impl std::ops::DerefMut for Extras {
    fn deref_mut(&mut self) -> &mut OrderExtras {
        self.0.get_or_insert_with(Default::default)
    }
}

impl PartialEq for Extras {
    fn eq(&self, other: &Extras) -> bool {
        **self == **other
    }
}

/// One attribute of an order's extras, as the log stores it. New variants go at the end.
#[derive(Deserialize)]
pub enum OrderAttr {
    Email(String),
    Note(String),
    Tags(Vec<String>),
    Metadata(BTreeMap<String, String>),
    Cancelled(Vec<CancelledLine>),
    CancelledAmount(Amount),
    CancelRefunds(Vec<usize>),
}

/// [`OrderAttr`] borrowed, for writing without a copy: the same variants in the same order,
/// so the same bytes.
#[derive(Serialize)]
enum OrderAttrRef<'a> {
    Email(&'a str),
    Note(&'a str),
    Tags(&'a [String]),
    Metadata(&'a BTreeMap<String, String>),
    Cancelled(&'a [CancelledLine]),
    CancelledAmount(&'a Amount),
    CancelRefunds(&'a [usize]),
}

impl OrderExtras {
    /// The attributes that differ from their default, in variant order.
    fn attrs(&self) -> Vec<OrderAttrRef<'_>> {
        let mut out = Vec::new();
        if let Some(e) = &self.email {
            out.push(OrderAttrRef::Email(e));
        }
        if let Some(n) = &self.note {
            out.push(OrderAttrRef::Note(n));
        }
        if !self.tags.is_empty() {
            out.push(OrderAttrRef::Tags(&self.tags));
        }
        if !self.metadata.is_empty() {
            out.push(OrderAttrRef::Metadata(&self.metadata));
        }
        if !self.cancelled.is_empty() {
            out.push(OrderAttrRef::Cancelled(&self.cancelled));
        }
        if !self.cancelled_amount.is_zero() {
            out.push(OrderAttrRef::CancelledAmount(&self.cancelled_amount));
        }
        if !self.cancel_refunds.is_empty() {
            out.push(OrderAttrRef::CancelRefunds(&self.cancel_refunds));
        }
        out
    }

    fn set(&mut self, attr: OrderAttr) {
        match attr {
            OrderAttr::Email(e) => self.email = Some(e),
            OrderAttr::Note(n) => self.note = Some(n),
            OrderAttr::Tags(t) => self.tags = t,
            OrderAttr::Metadata(m) => self.metadata = m,
            OrderAttr::Cancelled(c) => self.cancelled = c,
            OrderAttr::CancelledAmount(a) => self.cancelled_amount = a,
            OrderAttr::CancelRefunds(r) => self.cancel_refunds = r,
        }
    }
}

impl Serialize for Extras {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let attrs = self.attrs();
        let mut seq = s.serialize_seq(Some(attrs.len()))?;
        for a in &attrs {
            seq.serialize_element(a)?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for Extras {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Extras, D::Error> {
        let attrs: Vec<OrderAttr> = Vec::deserialize(d)?;
        let mut extras = OrderExtras::default();
        for a in attrs {
            extras.set(a);
        }
        Ok(Extras::new(extras))
    }
}

//! The schemas of values the wire types share: client keys, ids, money, times, free text,
//! quantities, statuses. Bounds come from the constants the server checks with.

use crate::domain::ids::KEY_LEN_MAX;
use crate::domain::money::{AMOUNT_MAX_EXPONENT, MINOR_UNITS_MAX};
use crate::domain::order::limits::{
    EMAIL_LEN_MAX, METADATA_KEY_LEN_MAX, METADATA_KEYS_MAX, METADATA_VALUE_LEN_MAX, NOTE_LEN_MAX, TAG_LEN_MAX, TAGS_MAX,
};
use crate::domain::order::{OrderStatus, QUANTITY_MAX, TEXT_LEN_MAX, TOKEN_LEN_MAX};
use serde_json::{Value, json};
use utoipa::openapi::Object;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, Type};

/// Pattern of a client key (`sku`, `warehouse_id`, `user_id`).
pub const KEY_PATTERN: &str = "^[A-Za-z0-9._:-]{1,64}$";
/// Pattern of an order id in a path or a cursor (`ORD-` and at most 19 digits: a `u64`).
pub const ORDER_ID_PATTERN: &str = "^ORD-[0-9]{1,19}$";
/// Pattern of a money amount as the server renders it.
pub const MONEY_PATTERN: &str = "^[0-9]+(\\.[0-9]+)?$";
/// Pattern of an SSE event id a client resumes from (`N` or `N.M`, each a `u64`).
pub const EVENT_ID_PATTERN: &str = "^[0-9]{1,19}(\\.[0-9]{1,19})?$";

/// A client key: 1 to 64 characters from `[A-Za-z0-9._:-]`.
pub fn key() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(KEY_LEN_MAX))
        .pattern(Some(KEY_PATTERN))
        .build()
}

/// An order id as rendered: `ORD-` and ten digits.
pub fn order_id() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some("^ORD-[0-9]{10,}$"))
        .examples(["ORD-0000000042"])
        .build()
}

/// The id of an order's part (`SHP-…-1`, `RET-…-1`, `REF-…-1`) as rendered.
fn child_id(prefix: &str) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(format!("^{prefix}-[0-9]{{10,}}-[0-9]+$")))
        .build()
}

pub fn shipment_id() -> Object {
    child_id("SHP")
}

pub fn return_id() -> Object {
    child_id("RET")
}

pub fn refund_id() -> Object {
    child_id("REF")
}

/// A nullable return id (a refund without a return).
pub fn return_id_or_null() -> Object {
    ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            Type::String,
            Type::Null,
        ]))
        .pattern(Some("^RET-[0-9]{10,}-[0-9]+$"))
        .build()
}

/// An amount as the server renders it: a decimal string with the currency's decimals.
pub fn money() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(MONEY_PATTERN))
        .examples(["19.99"])
        .build()
}

/// An amount a client sends: a decimal string or a JSON number, at least 0 and at most 10^15.
/// How many decimals are allowed depends on the order's currency (0, 2 or 3), which a schema
/// cannot say; the server answers 422 beyond them.
pub fn money_in() -> Schema {
    OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(money_in_pattern()))
                .max_length(Some(crate::api::limits::MONEY_LITERAL_LEN_MAX)),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Number)
                .minimum(Some(0.0))
                .maximum(Some(10f64.powi(AMOUNT_MAX_EXPONENT as i32))),
        )
        .description(Some(
            "A decimal amount, as a string (\"19.99\") or a number; at most the currency's decimals",
        ))
        .build()
        .into()
}

/// Pattern of a money amount a client may send as a string: a plain decimal below
/// 10^`AMOUNT_MAX_EXPONENT` with at most as many decimals as any currency has.
pub(crate) fn money_in_pattern() -> String {
    format!("^[0-9]{{1,{AMOUNT_MAX_EXPONENT}}}(\\.[0-9]{{1,{MINOR_UNITS_MAX}}})?$")
}

/// An RFC 3339 UTC time with milliseconds.
pub fn time() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
        .build()
}

/// A nullable time (a shipment not shipped yet).
pub fn time_or_null() -> Object {
    ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            Type::String,
            Type::Null,
        ]))
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
        .build()
}

/// Free text: at most 500 bytes (the schema counts characters; the server counts UTF-8 bytes).
pub fn text() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .max_length(Some(TEXT_LEN_MAX))
        .build()
}

/// Free text that must not be blank.
pub fn text_required() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(TEXT_LEN_MAX))
        .pattern(Some("\\S"))
        .build()
}

/// Optional free text that must not be blank when given (null means "not given").
pub fn text_optional() -> Object {
    ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            Type::String,
            Type::Null,
        ]))
        .min_length(Some(1))
        .max_length(Some(TEXT_LEN_MAX))
        .pattern(Some("\\S"))
        .build()
}

/// Pattern of an email address as the schema states it (the server's check is stricter:
/// dot-atom local part, DNS labels).
pub const EMAIL_PATTERN: &str = "^[^@\\s]+@[^@\\s.]+(\\.[^@\\s.]+)+$";

/// An email address, at most 254 bytes.
pub fn email() -> Object {
    ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            Type::String,
            Type::Null,
        ]))
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Email)))
        .max_length(Some(EMAIL_LEN_MAX))
        .pattern(Some(EMAIL_PATTERN))
        .build()
}

/// A note: at most 2000 bytes (null: none).
pub fn note() -> Object {
    ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            Type::String,
            Type::Null,
        ]))
        .max_length(Some(NOTE_LEN_MAX))
        .build()
}

/// A note in an edit: `null` removes it.
pub fn note_or_null() -> Object {
    note()
}

/// Tags: at most 20 distinct strings of 1 to 40 bytes, no commas, no surrounding spaces.
pub fn tags() -> utoipa::openapi::schema::Array {
    let tag = ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(TAG_LEN_MAX))
        .pattern(Some("^[^,\\s]([^,]*[^,\\s])?$"));
    utoipa::openapi::schema::ArrayBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            Type::Array,
            Type::Null,
        ]))
        .items(tag)
        .max_items(Some(TAGS_MAX))
        .unique_items(true)
        .build()
}

/// Metadata keys as the schema states them.
pub const METADATA_KEY_PATTERN: &str = "^[A-Za-z0-9._:-]{1,40}$";

fn metadata_of(value: Object) -> Object {
    let key = ObjectBuilder::new()
        .schema_type(Type::String)
        .max_length(Some(METADATA_KEY_LEN_MAX))
        .pattern(Some(METADATA_KEY_PATTERN));
    ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            Type::Object,
            Type::Null,
        ]))
        .property_names(Some(key))
        .additional_properties(Some(utoipa::openapi::schema::AdditionalProperties::RefOr(
            utoipa::openapi::RefOr::T(Schema::Object(value)),
        )))
        .max_properties(Some(METADATA_KEYS_MAX))
        .build()
}

/// Metadata: at most 50 keys from `[A-Za-z0-9._:-]{1,40}`, string values of at most 500 bytes.
pub fn metadata() -> Object {
    metadata_of(
        ObjectBuilder::new()
            .schema_type(Type::String)
            .max_length(Some(METADATA_VALUE_LEN_MAX))
            .build(),
    )
}

/// Metadata in an edit: a string sets its key, `null` removes it.
pub fn metadata_patch() -> Object {
    metadata_of(
        ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
                Type::String,
                Type::Null,
            ]))
            .max_length(Some(METADATA_VALUE_LEN_MAX))
            .build(),
    )
}

/// A payment token: 1 to 256 bytes, not blank.
pub fn token() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(TOKEN_LEN_MAX))
        .pattern(Some("\\S"))
        .build()
}

/// A line quantity: 1 to 1,000,000.
pub fn quantity() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(1))
        .maximum(Some(QUANTITY_MAX))
        .build()
}

/// An order status.
pub fn order_status() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(OrderStatus::ALL.map(|s| s.as_str())))
        .build()
}

/// A nullable order status (the first transition has no `from`).
pub fn order_status_or_null() -> Object {
    let mut values: Vec<Value> = OrderStatus::ALL.iter().map(|s| json!(s.as_str())).collect();
    values.push(Value::Null);
    ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            Type::String,
            Type::Null,
        ]))
        .enum_values(Some(values))
        .build()
}

fn string_enum(values: &[&str]) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values.iter().copied()))
        .build()
}

pub fn attempt_status() -> Object {
    string_enum(&["pending", "captured", "declined", "failed"])
}

pub fn shipment_status() -> Object {
    string_enum(&["pending", "shipped", "delivered"])
}

pub fn return_status() -> Object {
    string_enum(&["requested", "approved", "rejected", "received"])
}

pub fn refund_status() -> Object {
    string_enum(&["pending", "succeeded", "failed"])
}

/// An adjustment's delta: a non-zero integer within the on-hand range (±10^12).
pub fn delta() -> Schema {
    let side = |min: i64, max: i64| {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(min))
            .maximum(Some(max))
    };
    OneOfBuilder::new()
        .item(side(1, ON_HAND_MAX))
        .item(side(-ON_HAND_MAX, -1))
        .build()
        .into()
}

/// Largest on-hand count of a pair, as the schemas state it.
const ON_HAND_MAX: i64 = crate::domain::inventory::ON_HAND_MAX as i64;

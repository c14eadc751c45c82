-- The read model: a projection of the engine's log (src/read_model). The log is the system of
-- record; these tables are rebuilt from it (`oms read-model rebuild`) and never written by
-- anything else. Ids are the API's (ORD-…, SHP-…, RET-…, REF-…); times are timestamptz.

-- The last log record applied, written in the same transaction as the rows it produced.
CREATE TABLE read_model_position (
    name        text PRIMARY KEY,
    lsn         bigint NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE warehouses (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    country     text NOT NULL,
    lat         double precision,
    lon         double precision,
    priority    bigint NOT NULL,
    carrier     text,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);

CREATE TABLE inventory (
    sku           text NOT NULL,
    warehouse_id  text NOT NULL,
    on_hand       bigint NOT NULL,
    reserved      bigint NOT NULL,
    available     bigint GENERATED ALWAYS AS (on_hand - reserved) STORED,
    PRIMARY KEY (sku, warehouse_id)
);
CREATE INDEX inventory_warehouse ON inventory (warehouse_id, sku);

CREATE TABLE orders (
    id                      text PRIMARY KEY,
    number                  bigint NOT NULL UNIQUE,
    user_id                 text NOT NULL,
    currency                text NOT NULL,
    status                  text NOT NULL,
    subtotal_amount         numeric NOT NULL,
    tax_amount              numeric NOT NULL,
    shipping_amount         numeric NOT NULL,
    discount_amount         numeric NOT NULL,
    total_amount            numeric NOT NULL,
    authorized_amount       numeric NOT NULL,
    captured_amount         numeric NOT NULL,
    refunded_amount         numeric NOT NULL,
    shipping_country        text NOT NULL,
    shipping_city           text NOT NULL,
    shipping_address        jsonb NOT NULL,
    billing_address         jsonb,
    created_at              timestamptz NOT NULL,
    updated_at              timestamptz NOT NULL,
    reservation_expires_at  timestamptz NOT NULL
);
CREATE INDEX orders_status_updated ON orders (status, updated_at);
CREATE INDEX orders_created ON orders (created_at);
CREATE INDEX orders_user_created ON orders (user_id, created_at);

CREATE TABLE order_items (
    order_id    text NOT NULL REFERENCES orders (id),
    line_no     integer NOT NULL,
    sku         text NOT NULL,
    quantity    bigint NOT NULL,
    unit_price  numeric NOT NULL,
    discount    numeric NOT NULL,
    line_total  numeric NOT NULL,
    PRIMARY KEY (order_id, line_no)
);
CREATE INDEX order_items_sku ON order_items (sku);

CREATE TABLE order_item_allocations (
    order_id      text NOT NULL,
    line_no       integer NOT NULL,
    alloc_no      integer NOT NULL,
    warehouse_id  text NOT NULL,
    quantity      bigint NOT NULL,
    PRIMARY KEY (order_id, line_no, alloc_no),
    FOREIGN KEY (order_id, line_no) REFERENCES order_items (order_id, line_no)
);
CREATE INDEX order_item_allocations_warehouse ON order_item_allocations (warehouse_id);

CREATE TABLE order_status_history (
    order_id     text NOT NULL REFERENCES orders (id),
    seq          integer NOT NULL,
    from_status  text,
    to_status    text NOT NULL,
    reason       text NOT NULL,
    actor        text NOT NULL,
    metadata     jsonb NOT NULL,
    at           timestamptz NOT NULL,
    PRIMARY KEY (order_id, seq)
);
CREATE INDEX order_status_history_to_at ON order_status_history (to_status, at);

CREATE TABLE payments (
    order_id          text NOT NULL REFERENCES orders (id),
    attempt_no        integer NOT NULL,
    amount            numeric NOT NULL,
    gateway_key       text NOT NULL,
    token_hint        text NOT NULL,
    status            text NOT NULL,
    authorization_id  text,
    failure_reason    text,
    attempted_at      timestamptz NOT NULL,
    PRIMARY KEY (order_id, attempt_no)
);
CREATE INDEX payments_status ON payments (status, attempted_at);

CREATE TABLE shipments (
    id               text PRIMARY KEY,
    order_id         text NOT NULL REFERENCES orders (id),
    warehouse_id     text NOT NULL,
    carrier          text NOT NULL,
    tracking_number  text,
    status           text NOT NULL,
    created_at       timestamptz NOT NULL,
    shipped_at       timestamptz,
    delivered_at     timestamptz
);
CREATE INDEX shipments_order ON shipments (order_id);
CREATE INDEX shipments_warehouse_status ON shipments (warehouse_id, status);

CREATE TABLE shipment_items (
    shipment_id  text NOT NULL REFERENCES shipments (id),
    line_no      integer NOT NULL,
    sku          text NOT NULL,
    quantity     bigint NOT NULL,
    PRIMARY KEY (shipment_id, line_no)
);

CREATE TABLE returns (
    id                     text PRIMARY KEY,
    order_id               text NOT NULL REFERENCES orders (id),
    reason                 text NOT NULL,
    status                 text NOT NULL,
    rejection_reason       text,
    received_warehouse_id  text,
    restock                boolean,
    created_at             timestamptz NOT NULL,
    updated_at             timestamptz NOT NULL
);
CREATE INDEX returns_order ON returns (order_id);

CREATE TABLE return_items (
    return_id  text NOT NULL REFERENCES returns (id),
    line_no    integer NOT NULL,
    sku        text NOT NULL,
    quantity   bigint NOT NULL,
    PRIMARY KEY (return_id, line_no)
);

CREATE TABLE refunds (
    id              text PRIMARY KEY,
    order_id        text NOT NULL REFERENCES orders (id),
    amount          numeric NOT NULL,
    return_id       text REFERENCES returns (id),
    reason          text NOT NULL,
    gateway_key     text NOT NULL,
    for_cancel      boolean NOT NULL,
    status          text NOT NULL,
    gateway_ref     text,
    failure_reason  text,
    created_at      timestamptz NOT NULL
);
CREATE INDEX refunds_order ON refunds (order_id);
CREATE INDEX refunds_created ON refunds (created_at);

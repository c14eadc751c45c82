//! Events out, end to end: the real `oms` binary with its relays, a real RabbitMQ broker
//! (127.0.0.1:5672, guest/guest) and local webhook receivers.
//!
//! - `support`: the server process, an SSE reader, the broker consumer.
//! - `amqp`: every event of a lifecycle arrives with the right routing key, id and order;
//!   kill -9 under load loses nothing (after deduplication the consumer has exactly what SSE
//!   replays); a broker that is down does not stop orders.
//!
//! Broker tests print that they were skipped when RabbitMQ is unreachable, and fail instead
//! when `OMS_REQUIRE_BROKER=1` (CI sets it).

mod support;

mod amqp;

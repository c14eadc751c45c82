//! The optional integrations that follow the durable log once the engine is open: the
//! PostgreSQL read model (`--postgres-url`) and the RabbitMQ relay (`--amqp-url`). Each is off
//! unless its flag is given (cluster mode's switch to primary is made here too), never blocks the engine, and reports through `AppState` (its
//! `/readyz` detail and metrics).

use crate::api::AppState;
use crate::cluster::Role;
use crate::engine::Engine;
use std::sync::Arc;

/// Which integrations the command line turned on (`oms serve`'s flags).
pub(crate) struct Integrations<'a> {
    pub postgres_url: Option<&'a str>,
    pub amqp_url: Option<&'a str>,
    pub amqp_exchange: &'a str,
}

/// Starts the integrations `args` turns on, after the engine is handed to the API; in cluster
/// mode this node now serves writes.
pub(crate) fn start(args: Integrations<'_>, state: &AppState, engine: &Engine) {
    if let Some(status) = state.cluster() {
        status.update(|s| {
            if s.role == Role::Starting {
                s.role = Role::Primary;
            }
        });
        tracing::info!("primary: serving writes");
    }
    if let Some(url) = args.postgres_url {
        let status = Arc::new(crate::read_model::ReadModelStatus::default());
        state.set_read_model(status.clone());
        let config = crate::read_model::ReadModelConfig::new(url.to_string());
        crate::read_model::spawn(engine.clone(), config, status, state.shutdown_signal());
        tracing::info!("read model: projecting the log into PostgreSQL");
    }
    if let Some(url) = args.amqp_url {
        let config = crate::relay::amqp::AmqpConfig {
            url: url.to_string(),
            exchange: args.amqp_exchange.to_string(),
        };
        state.set_relay(crate::relay::amqp::start(
            engine.clone(),
            config,
            state.shutdown_signal(),
        ));
        tracing::info!("relay: publishing every event to RabbitMQ");
    }
}

/// `--amqp-exchange`: an AMQP exchange name is 1-255 bytes.
pub(crate) fn parse_exchange(s: &str) -> Result<String, String> {
    if s.is_empty() || s.len() > 255 {
        return Err("an exchange name is 1-255 bytes".into());
    }
    Ok(s.to_string())
}

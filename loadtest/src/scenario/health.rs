//! `health`: GET /healthz as fast as the HTTP stack allows. Its throughput is
//! the ceiling the other scenarios are compared to; with `--requests 1` it is
//! the smallest smoke check.

use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value, json};

use crate::api::{Api, Req};
use crate::driver::Workload;
use crate::recorder::{Class, Recorder};
use crate::report::ReportInput;
use crate::scenario::Ctx;

/// Default length of the measured phase, in seconds.
const DURATION_SECS_DEFAULT: u64 = 10;

struct Health {
    api: Api,
    rec: Arc<Recorder>,
}

impl Workload for Health {
    async fn run_unit(&self, _seq: u64, intended: Instant) {
        self.api
            .call(&self.rec, "healthz", intended, &Req::get("/healthz"), |r| {
                if r.status.as_u16() == 200 {
                    Class::Ok
                } else {
                    Class::Error
                }
            })
            .await;
    }
}

pub(crate) async fn run(ctx: &Ctx) -> anyhow::Result<(Arc<Recorder>, ReportInput)> {
    let rec = ctx.measuring_recorder().await;
    let workload = Arc::new(Health {
        api: ctx.api.clone(),
        rec: rec.clone(),
    });
    let summary = ctx
        .drive(
            workload,
            rec.clone(),
            ctx.mode(),
            ctx.limits(DURATION_SECS_DEFAULT, u64::MAX),
        )
        .await;
    let counts = rec.counts();
    let mut failures = Vec::new();
    if counts.errors > 0 {
        failures.push(format!("{} health checks did not answer 200", counts.errors));
    }
    let input = ReportInput {
        scenario: "health",
        parameters: json!({}),
        setup_secs: None,
        summary,
        extra: Value::Null,
        failures,
    };
    Ok((rec, input))
}

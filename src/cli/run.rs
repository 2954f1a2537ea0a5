//! Carries out a parsed `saprouter` command line inside the tokio runtime: one admin or
//! info request to a running router, or the router itself (trace file, metrics endpoint,
//! reverse invoke, signals) until it stops.

use std::process::ExitCode;
use std::sync::Arc;

use tracing_subscriber::{fmt, prelude::*, reload, EnvFilter};

use super::command::{CliError, Request};
use super::start::Start;
use crate::adminclient;
use crate::router::{Lifecycle, Router, Shared, TraceHook};

/// Runs an admin request, an info request or a start; returns the exit code.
pub async fn run(request: Request) -> ExitCode {
    let outcome = match request {
        Request::Admin(target, cmd) => {
            adminclient::command(&target.host, target.port, cmd, target.wait)
                .await
                .map_err(CliError::fail)
        }
        Request::Info {
            target,
            password,
            long,
        } => adminclient::info(&target.host, target.port, password.as_deref(), target.wait)
            .await
            .map(|reply| {
                let now = crate::router::errors::ctime_now();
                print!("{}", adminclient::info_text::render(&reply, long, &now));
            })
            .map_err(CliError::fail),
        Request::Start(args) => match args.build() {
            Ok(start) => run_router(start).await,
            Err(err) => Err(err),
        },
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => err.report(),
    }
}

/// The trace file's filter for a level (1 info, 2 debug, 3 trace); `RUST_LOG` wins.
fn filter_for(level: u8) -> EnvFilter {
    if let Ok(env) = EnvFilter::try_from_default_env() {
        return env;
    }
    EnvFilter::new(match level {
        0 | 1 => "info",
        2 => "debug",
        _ => "trace",
    })
}

/// Opens the trace file, starts the router (and its metrics endpoint and reverse-invoke
/// role) and runs it until it stops.
async fn run_router(start: Start) -> Result<(), CliError> {
    let Start {
        config,
        ri,
        observe,
    } = start;
    let trace = crate::router::logfile::CappedFile::open(
        &config.trace_file,
        config.append,
        config.max_log_size,
    )
    .map_err(|err| {
        CliError::Fail(format!(
            "cannot open trace file {}: {err}",
            config.trace_file.display()
        ))
    })?;
    let (filter, handle) = reload::Layer::new(filter_for(config.trace_level));
    let writer = std::sync::Mutex::new(trace);
    let (text, json) = if observe.json {
        let json = fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .with_writer(writer);
        (None, Some(json))
    } else {
        (
            Some(fmt::layer().with_ansi(false).with_writer(writer)),
            None,
        )
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(text)
        .with(json)
        .init();
    if observe.metrics.is_some() {
        // Before anything can be counted (the reverse-invoke links start with the router).
        crate::metrics::install();
    }
    if let Some(snc) = &config.snc {
        tracing::info!(snc_name = %snc.name(), "SNC active: TLS 1.3 with mutual authentication");
    }
    let hook: TraceHook = Box::new(move |level| {
        let _ = handle.modify(|f| *f = filter_for(level));
    });
    let router = Router::bind(config, Some(hook)).await.map_err(|err| {
        tracing::error!(%err, "router not started");
        CliError::fail(err)
    })?;
    let shared = router.shared();
    shared.snc_started();
    if let Some(addr) = observe.metrics {
        if let Err(err) = crate::metrics::start(addr, shared.status_source()).await {
            tracing::error!(%addr, %err, "metrics endpoint not started");
            return Err(CliError::Fail(format!(
                "--metrics {addr}: cannot listen: {err}"
            )));
        }
    }
    let ri = match ri {
        Some(params) => match crate::ri::start(router.shared(), params).await {
            Ok(handle) => Some(handle),
            Err(err) => {
                tracing::error!(%err, "router not started");
                return Err(CliError::fail(err));
            }
        },
        None => None,
    };
    tokio::spawn(async move {
        signals(shared).await;
    });
    let outcome = router.run().await;
    if let Some(ri) = ri {
        ri.finish().await;
    }
    outcome.map_err(CliError::fail)
}

/// SIGTERM/SIGINT stop like `-s`; SIGHUP reloads like `-n`.
async fn signals(shared: Arc<Shared>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::warn!("signal handlers not installed");
        return;
    };
    loop {
        tokio::select! {
            _ = term.recv() => { tracing::info!("SIGTERM: stopping"); shared.set_lifecycle(Lifecycle::Stopping); }
            _ = int.recv() => { tracing::info!("SIGINT: stopping"); shared.set_lifecycle(Lifecycle::Stopping); }
            _ = hup.recv() => {
                // Errors are in the trace already; the identity in use stays.
                let _ = shared.reload_snc().await;
                match shared.reload_routtab().await {
                    Ok(lines) => {
                        tracing::info!(lines, "SIGHUP: route permission table reloaded");
                        if let Some(log) = shared.connlog() {
                            log.read_routtab(&shared.config().routtab);
                        }
                    }
                    Err(err) => tracing::error!(%err, "SIGHUP: table not reloaded; the old table stays"),
                }
            }
        }
    }
}

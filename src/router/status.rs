//! What the router reports to the metrics, converted into the metrics' own plain types
//! (the metrics depend on nothing of the daemon; the dependency runs this way only).

use std::sync::Arc;

use super::relay::Outcome;
use super::state::{Lifecycle, Shared};
use crate::metrics::{Phase, RouteClosed, Status, TlsExpiry};

impl Shared {
    /// The router's state now, as `/metrics` and `/readyz` read it.
    pub fn status(&self) -> Status {
        let clients = self.clients().snapshot();
        let routed = clients.iter().filter(|c| c.partner.is_some()).count();
        let tls = self.config().snc.as_ref().map(|snc| TlsExpiry {
            // Read each time: the identity may have been reloaded since start-up.
            identity: snc.certificate().not_after,
            first_ca: snc.ca_certificates().iter().map(|c| c.not_after).min(),
        });
        Status {
            phase: phase(self.lifecycle()),
            routed,
            preroute: clients.len() - routed,
            clients_used: self.admission().clients_in_use(),
            clients_max: self.admission().max_clients(),
            tls,
        }
    }

    /// A source of [`Shared::status`] for the metrics endpoint ([`crate::metrics::start`]).
    pub fn status_source(self: &Arc<Self>) -> crate::metrics::status::Source {
        let shared = Arc::clone(self);
        Arc::new(move || shared.status())
    }
}

fn phase(lifecycle: Lifecycle) -> Phase {
    match lifecycle {
        Lifecycle::Running => Phase::Running,
        Lifecycle::SoftShutdown => Phase::SoftShutdown,
        Lifecycle::Stopping => Phase::Stopping,
    }
}

impl From<&Outcome> for RouteClosed {
    fn from(outcome: &Outcome) -> Self {
        Self {
            to_server: outcome.to_server,
            to_client: outcome.to_client,
            interrupted: outcome.interrupted.is_some(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(max_clients: usize) -> Arc<Shared> {
        let config = super::super::RouterConfig {
            max_clients,
            ..Default::default()
        };
        Shared::for_tests(config)
    }

    #[test]
    fn the_source_reads_the_router_at_each_call() {
        let shared = shared(5);
        let source = shared.status_source();
        let now = source();
        assert_eq!(now.phase, Phase::Running);
        assert_eq!((now.clients_used, now.clients_max), (0, 5));
        assert_eq!((now.routed, now.preroute), (0, 0));
        assert_eq!(now.tls, None, "no SNC, no certificate dates");
        let slots: Vec<_> = (0..2)
            .map(|_| shared.admission().take_client_slot().unwrap())
            .collect();
        assert_eq!(source().clients_used, 2);
        drop(slots);
        assert_eq!(source().clients_used, 0);
        shared.set_lifecycle(Lifecycle::SoftShutdown);
        assert_eq!(source().phase, Phase::SoftShutdown);
    }

    #[test]
    fn lifecycle_maps_to_phase() {
        assert_eq!(phase(Lifecycle::Running), Phase::Running);
        assert_eq!(phase(Lifecycle::SoftShutdown), Phase::SoftShutdown);
        assert_eq!(phase(Lifecycle::Stopping), Phase::Stopping);
    }

    #[test]
    fn outcome_converts_to_route_closed() {
        let outcome = Outcome {
            to_server: 7,
            to_client: 9,
            interrupted: Some(super::super::clients::Interrupt::Shutdown),
        };
        assert_eq!(
            RouteClosed::from(&outcome),
            RouteClosed {
                to_server: 7,
                to_client: 9,
                interrupted: true
            }
        );
    }
}

//! Event subscriptions (`GET /1.0/events`): which events a listener asked for, and the stream
//! of them from this member's hub (its own events and, in a cluster, the ones relayed from the
//! other members; another member listening gets only this member's own).

use std::sync::Arc;

use tokio::sync::broadcast;

use super::{Error, Result};
use crate::api::Event;
use crate::events::{EventHub, ListenerGuard, TYPE_LIFECYCLE, TYPE_LOGGING, TYPE_OPERATION};

/// What a listener asked for.
#[derive(Clone, Debug)]
pub struct Filter {
    pub types: Vec<String>,
    /// One project, or every project.
    pub project: Option<String>,
    /// Another cluster member listening: only this member's own events go to it.
    pub own_only: bool,
}

impl Filter {
    /// The filter `?type=`, `?project=` and `?all-projects=` ask for.
    pub fn parse(types: Option<&str>, project: Option<&str>, all_projects: bool, own_only: bool) -> Result<Filter> {
        let types: Vec<String> = match types.filter(|t| !t.is_empty()) {
            Some(t) => t.split(',').map(str::to_string).collect(),
            None => vec![TYPE_LOGGING.into(), TYPE_OPERATION.into(), TYPE_LIFECYCLE.into()],
        };
        for t in &types {
            if ![TYPE_LOGGING, TYPE_OPERATION, TYPE_LIFECYCLE].contains(&t.as_str()) {
                return Err(Error::BadRequest(format!("'{t}' isn't a supported event type")));
            }
        }
        let project = project.filter(|p| !p.is_empty()).map(str::to_string);
        if all_projects && project.is_some() {
            return Err(Error::BadRequest("Cannot specify a project when requesting all projects".into()));
        }
        Ok(Filter {
            types,
            project: if all_projects { None } else { Some(project.unwrap_or_else(|| "default".into())) },
            own_only,
        })
    }
}

/// One listener's view of the hub, for as long as it lives.
pub struct Subscription {
    rx: broadcast::Receiver<Arc<Event>>,
    filter: Filter,
    hub: Arc<EventHub>,
    _logging: Option<ListenerGuard>,
    _member: Option<ListenerGuard>,
}

/// What the next receive gave.
pub enum Next {
    Event(Arc<Event>),
    /// The listener was too slow: this many events were dropped for it.
    Lagged(u64),
    Closed,
}

impl Subscription {
    pub fn new(hub: Arc<EventHub>, filter: Filter) -> Subscription {
        let logging = (!filter.own_only && filter.types.iter().any(|t| t == TYPE_LOGGING)).then(|| hub.want_logging());
        let member = filter.own_only.then(|| hub.member_stream());
        Subscription { rx: hub.subscribe(), filter, hub, _logging: logging, _member: member }
    }

    fn wanted(&self, ev: &Event) -> bool {
        if !self.filter.types.contains(&ev.kind) {
            return false;
        }
        if self.filter.own_only && ev.location != self.hub.location() {
            return false;
        }
        match &self.filter.project {
            Some(p) if !ev.project.is_empty() => *p == ev.project,
            _ => true,
        }
    }

    /// The next event the listener asked for.
    pub async fn next(&mut self) -> Next {
        loop {
            match self.rx.recv().await {
                Ok(ev) if self.wanted(&ev) => return Next::Event(ev),
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(n)) => return Next::Lagged(n),
                Err(broadcast::error::RecvError::Closed) => return Next::Closed,
            }
        }
    }
}

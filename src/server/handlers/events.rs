//! `GET /1.0/events` as a websocket: this member's event stream filtered by type and project.

use std::sync::Arc;

use crate::server::request::Request;
use crate::server::response::{Answer, ApiError};
use crate::server::routes::{Action, Params};
use crate::server::websocket;
use crate::services::Member;
use crate::services::events::{Filter, Subscription};

pub struct Subscribe {
    upgrade: websocket::Upgrade,
    filter: Filter,
}

impl Action for Subscribe {
    fn parse(req: &mut Request, _: &Params) -> Result<Self, ApiError> {
        let filter = Filter::parse(req.query("type"), req.query("project"), req.all_projects(), req.from_member())?;
        Ok(Subscribe { upgrade: websocket::Upgrade::take(req)?, filter })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        let subscription = Subscription::new(member.events.clone(), self.filter);
        let shutdown = member.shutdown.clone();
        Ok(websocket::accept(self.upgrade, move |socket| websocket::follow_events(socket, subscription, shutdown)))
    }
}

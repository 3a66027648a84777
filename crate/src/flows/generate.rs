//! `generate`: create a token with MAS's `addUserRegistrationToken`.

use crate::flows::{unexpected_response, unreadable_response, Context, Flow, FlowStep};
use crate::mas::admin::{AdminCall, NewToken};
use crate::mas::model;
use crate::protocol::HttpResponse;
use crate::reply::{self, strong, text, token_details, Doc};

pub struct Generate {
    call: AdminCall,
}

impl Generate {
    pub fn new(fields: NewToken) -> Generate {
        Generate {
            call: AdminCall::Add(fields),
        }
    }
}

impl Flow for Generate {
    fn begin(&mut self, _cx: &mut Context<'_>) -> FlowStep {
        FlowStep::Call(self.call.clone())
    }

    fn on_response(&mut self, cx: &mut Context<'_>, response: &HttpResponse) -> FlowStep {
        let call = self.call.describe();
        match response.status {
            200 | 201 => {}
            409 => {
                return FlowStep::Done(reply::error(
                    "A registration token with that token string already exists.",
                ))
            }
            _ => return unexpected_response(cx, &call, response),
        }

        let token = match model::parse_single(&response.body) {
            Ok(token) => token,
            Err(problem) => return unreadable_response(cx, &call, problem),
        };

        cx.lookup.remember(&token.token, token.id);
        cx.audit(format_args!("created token {}", token.id));

        let reply = Doc::new()
            .paragraph(vec![strong("Created a registration token"), text(":")])
            .list(token_details(&token, cx.now))
            .render(false);
        FlowStep::Done(reply)
    }
}

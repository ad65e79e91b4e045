//! `gracestop drain`: the pre-stop steps alone (deregister, drain), then exit.
//! The shell-free Kubernetes preStop.

use anyhow::Result;

use crate::config::DrainConfig;
use crate::deregister::Deregistration;
use crate::event::Event;
use crate::exit::Exit;
use crate::log;
use crate::requests;
use crate::sequence::{self, Plan};

pub async fn drain(config: &DrainConfig) -> Result<Exit> {
    let requests = requests::listen()?;
    let deregistration = Deregistration::new(&config.pre_stop.deregister)?;
    let mut plan = Plan { steps: config.pre_stop.steps(deregistration.as_ref()), stop: None };
    plan.announce("", &[], config.pre_stop.deadline);
    sequence::before_signal(&plan.steps, &requests).await?;
    log::emit(Event::Drained);
    Ok(Exit::Success)
}

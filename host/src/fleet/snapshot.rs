//! The registry as readers see it: an immutable [`Snapshot`] of every group
//! and device, swapped in after each commit and read without a lock.

use std::collections::BTreeMap;

use super::model::{Device, Group, GroupId};

/// The registry as it stands after a commit.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Groups by id.
    pub groups: BTreeMap<String, Group>,
    /// Devices by id.
    pub devices: BTreeMap<String, Device>,
}

impl Snapshot {
    /// The group of device `id`, when it is registered in one.
    pub fn group_of(&self, id: &str) -> Option<&GroupId> {
        self.devices.get(id).and_then(|d| d.group.as_ref())
    }

    /// The devices of `group`, in id order.
    pub fn members<'a>(&'a self, group: &'a str) -> impl Iterator<Item = &'a Device> + 'a {
        self.devices
            .values()
            .filter(move |d| d.group.as_ref().is_some_and(|g| g.as_str() == group))
    }
}

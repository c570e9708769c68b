//! Events stored elsewhere already (a cluster's shared stream, not this
//! host's queue): the [`Claim`] this host holds on one while its webhooks
//! deliver it, and gives up once they are all done with it.

/// This host's claim on an event stored elsewhere. Dropping it unfinished
/// hands the event back, so that a host takes it again.
pub trait Claim: std::fmt::Debug + Send + Sync {
    /// Every webhook is done with the event: the store forgets it.
    fn finish(&self);
}

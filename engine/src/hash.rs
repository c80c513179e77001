//! The default hasher.

/// The default hasher: foldhash, with a random seed per registry.
///
/// foldhash is among the fastest good-quality hashers for small keys, and its per-instance
/// random seed keeps one registry's collisions from carrying over to another. It is not
/// a cryptographic PRF: for keys chosen by untrusted parties, build the registry with
/// `builder().hasher(std::hash::RandomState::new())` (SipHash-1-3).
pub type DefaultHashBuilder = foldhash::fast::RandomState;

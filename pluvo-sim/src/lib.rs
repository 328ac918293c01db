//! pluvo-sim
